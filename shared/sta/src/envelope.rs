//! The collection response envelope: `{"@iot.count": n, "@iot.nextLink": url, "value": [...]}`,
//! and the next link built from `$top`/`$skip` (the request's other options kept as sent).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A page of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T = Value> {
    #[serde(rename = "@iot.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(rename = "@iot.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    pub value: Vec<T>,
}

/// The `@iot.nextLink` of a page, or `None` on the last page.
///
/// `url` is the request URL without its query (`https://h/sta/v1.1/Things`), `raw_query` the
/// query as received (percent-encoded, without `?`). `top` is the page size in effect (the
/// request's `$top` or the server's default), `skip` the request's `$skip` (0 if none),
/// `returned` the number of entities in this page and `count` the total when known. Without a
/// count, a full page means there may be more. The link repeats every option of the request
/// except `$skip` (advanced by `top`) and `$top` (set to `top`).
pub fn next_link(url: &str, raw_query: &str, top: u64, skip: u64, returned: u64, count: Option<u64>) -> Option<String> {
    let more = match count {
        Some(total) => skip.saturating_add(returned) < total,
        None => returned >= top && top > 0,
    };
    if !more || returned == 0 {
        return None;
    }
    let mut parts: Vec<String> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(k, _)| k);
            let name = crate::options::decode_component(name).unwrap_or_default();
            name != "$top" && name != "$skip"
        })
        .map(str::to_owned)
        .collect();
    parts.push(format!("$top={top}"));
    parts.push(format!("$skip={}", skip.saturating_add(returned)));
    Some(format!("{url}?{}", parts.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_shape() {
        let p = Page {
            count: Some(1594349),
            next_link: Some("http://h/v1.1/Observations?$top=100&$skip=100".into()),
            value: vec![json!({"@iot.id": 1})],
        };
        let v = serde_json::to_value(&p).unwrap_or_default();
        let keys: Vec<&String> = v.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["@iot.count", "@iot.nextLink", "value"]);
        let bare =
            serde_json::to_value(Page::<Value> { count: None, next_link: None, value: vec![] }).unwrap_or_default();
        assert_eq!(bare, json!({"value": []}));
    }

    #[test]
    fn next_links() {
        let u = "http://h/sta/v1.1/Observations";
        // the spec's example: 100 of 1,594,349
        assert_eq!(
            next_link(u, "", 100, 0, 100, Some(1594349)).as_deref(),
            Some("http://h/sta/v1.1/Observations?$top=100&$skip=100")
        );
        // options kept, $top/$skip replaced
        assert_eq!(
            next_link(u, "$filter=result%20gt%205&$top=3&$skip=6&$count=true", 3, 6, 3, Some(10)).as_deref(),
            Some("http://h/sta/v1.1/Observations?$filter=result%20gt%205&$count=true&$top=3&$skip=9")
        );
        assert_eq!(next_link(u, "$top=3&$skip=6", 3, 6, 3, Some(9)), None, "last page");
        assert_eq!(next_link(u, "", 3, 0, 2, None), None, "short page");
        assert!(next_link(u, "", 3, 0, 3, None).is_some(), "full page, count unknown");
        assert_eq!(
            next_link(u, "%24skip=1", 2, 1, 2, None).as_deref(),
            Some("http://h/sta/v1.1/Observations?$top=2&$skip=3")
        );
    }
}
