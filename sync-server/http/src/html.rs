//! HTML views for browsers (OGC API – Features /conf/html): the same resources as the JSON,
//! readable by a person. Chinese first, English beside it. No scripts, no external resources.

use std::fmt::Write as _;

use serde_json::Value as Json;
use shikong_model::{Value, time};
use shikong_store::{Layer, StoredFeature};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f5f8}a{color:#0b5cad}nav{margin-bottom:1em;color:#666}code{background:#f3f3f3;padding:1px 4px}\
.en{color:#777;font-size:90%}";

pub(crate) fn page(title: &str, crumbs: &[(&str, &str)], body: &str) -> String {
    let mut nav = String::from("<nav><a href=\"/?f=html\">首页 <span class=en>Home</span></a>");
    for (href, label) in crumbs {
        let _ = write!(nav, " › <a href=\"{}\">{}</a>", esc(href), esc(label));
    }
    nav.push_str("</nav>");
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} — shikong 时空</title><style>{STYLE}</style></head><body>{nav}{body}</body></html>",
        esc(title)
    )
}

pub fn landing(doc: &Json) -> String {
    let mut body = String::from(
        "<h1>shikong 时空</h1><p>智慧城市时空大数据平台 · OGC API – Features <span class=en>spatio-temporal data service</span></p><ul>",
    );
    for l in doc["links"].as_array().into_iter().flatten() {
        let href = l["href"].as_str().unwrap_or("");
        let title = l["title"].as_str().unwrap_or("");
        let html_href = if href.contains('?') { format!("{href}&f=html") } else { format!("{href}?f=html") };
        if l["rel"] == "alternate" || l["rel"] == "self" {
            continue;
        }
        let label = match l["rel"].as_str() {
            Some("data") => "数据集合 <span class=en>Collections</span>",
            Some("conformance") => "符合性声明 <span class=en>Conformance</span>",
            Some("service-desc") | Some("service-doc") => "接口定义 <span class=en>API definition</span>",
            _ => "",
        };
        let _ =
            write!(body, "<li><a href=\"{}\">{label}</a> <span class=en>{}</span></li>", esc(&html_href), esc(title));
    }
    body.push_str("</ul><p class=en>Add <code>?f=json</code> to any page for the JSON; items accept <code>as-of=</code> to read any past state.</p>");
    page("首页", &[], &body)
}

pub fn conformance(classes: &[&str]) -> String {
    let items: String = classes.iter().map(|c| format!("<li><code>{}</code></li>", esc(c))).collect();
    page(
        "符合性声明 Conformance",
        &[("/conformance?f=html", "符合性声明")],
        &format!("<h1>符合性声明 <span class=en>Conformance</span></h1><ul>{items}</ul>"),
    )
}

pub fn api(doc: &Json) -> String {
    let mut rows = String::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let _ = write!(
                    rows,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&method.to_uppercase()),
                    esc(path),
                    esc(op["summary"].as_str().unwrap_or(""))
                );
            }
        }
    }
    page(
        "接口定义 API",
        &[("/api?f=html", "接口定义")],
        &format!(
            "<h1>接口定义 <span class=en>API</span></h1><p><a href=\"/api?f=json\">OpenAPI 3.0 JSON</a></p><table><tr><th>方法</th><th>路径</th><th>说明</th></tr>{rows}</table>"
        ),
    )
}

pub fn collections(layers: &[Layer]) -> String {
    let mut rows = String::new();
    for l in layers {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/collections/{id}?f=html\">{title}</a></td><td><code>{id}</code></td><td>{kind}</td><td>{desc}</td><td><a href=\"/collections/{id}/items?f=html\">要素 <span class=en>items</span></a></td></tr>",
            id = esc(l.name()),
            title = esc(l.display_name()),
            kind = esc(l.def.geometry_kind.geojson_name()),
            desc = esc(l.def.description.as_deref().unwrap_or("")),
        );
    }
    page(
        "数据集合 Collections",
        &[("/collections?f=html", "数据集合")],
        &format!(
            "<h1>数据集合 <span class=en>Collections</span></h1><table><tr><th>名称</th><th>标识</th><th>几何</th><th>说明</th><th></th></tr>{rows}</table>"
        ),
    )
}

pub fn collection(l: &Layer, doc: &Json) -> String {
    let mut fields = String::new();
    for f in &l.schema().fields {
        let _ = write!(
            fields,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(f.title.as_deref().unwrap_or("")),
            esc(f.ty.name()),
            if f.required { "必填" } else { "" }
        );
    }
    let bbox = doc["extent"]["spatial"]["bbox"][0].to_string();
    page(
        l.display_name(),
        &[("/collections?f=html", "数据集合"), (&format!("/collections/{}?f=html", l.name()), l.display_name())],
        &format!(
            "<h1>{}</h1><p>{}</p><p>范围 <span class=en>extent</span>: <code>{}</code> · 存储坐标系 <code>EPSG:4490 (CGCS2000)</code></p>\
             <p><a href=\"/collections/{id}/items?f=html\">浏览要素 <span class=en>browse items</span></a> · <a href=\"/collections/{id}/items\">GeoJSON</a> · \
             <a href=\"/collections/{id}/queryables?f=html\">可查询属性 <span class=en>queryables</span></a></p>\
             <h2>字段 <span class=en>Fields</span></h2><table><tr><th>字段</th><th>标题</th><th>类型</th><th></th></tr>{fields}</table>",
            esc(l.display_name()),
            esc(l.def.description.as_deref().unwrap_or("")),
            esc(&bbox),
            id = esc(l.name()),
        ),
    )
}

pub fn queryables(l: &Layer, doc: &Json) -> String {
    let mut rows = String::new();
    for (k, v) in doc["properties"].as_object().into_iter().flatten() {
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(k),
            esc(v["title"].as_str().unwrap_or("")),
            esc(v["type"].as_str().or(v["format"].as_str()).unwrap_or(""))
        );
    }
    page(
        "可查询属性",
        &[("/collections?f=html", "数据集合"), (&format!("/collections/{}?f=html", l.name()), l.display_name())],
        &format!(
            "<h1>可查询属性 <span class=en>Queryables</span></h1><p>CQL2: <code>filter=埋深 &gt; 2 AND 状态 = '2'</code></p><table><tr><th>属性</th><th>标题</th><th>类型</th></tr>{rows}</table>"
        ),
    )
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::DateTime(t)) => esc(&time::beijing(*t)),
        Some(other) => esc(&other.to_text()),
    }
}

/// A page of features; `next` is the cursor of the next page (`None`: this is the last).
pub fn items(
    l: &Layer,
    features: &[StoredFeature],
    offset: usize,
    limit: usize,
    next: Option<&str>,
    query: &str,
) -> String {
    let fields: Vec<_> = l.schema().active().collect();
    let mut head = String::from("<tr><th>编码 code</th>");
    for f in &fields {
        let _ = write!(head, "<th>{}</th>", esc(f.title.as_deref().unwrap_or(&f.name)));
    }
    head.push_str("<th>几何 geometry</th><th>版本</th></tr>");
    let mut rows = String::new();
    for f in features {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/collections/{}/items/{}?f=html\">{}</a></td>",
            esc(l.name()),
            f.feature.id,
            esc(&f.feature.code)
        );
        for fd in &fields {
            let _ = write!(rows, "<td>{}</td>", cell(f.feature.properties.get(&fd.name)));
        }
        let g = f.feature.geometry.as_ref().map(|g| {
            let w = shikong_model::wkt::to_wkt(g);
            if w.chars().count() > 80 { format!("{}…", w.chars().take(80).collect::<String>()) } else { w }
        });
        let _ = write!(rows, "<td><code>{}</code></td><td>{}</td></tr>", esc(g.as_deref().unwrap_or("")), f.version);
    }
    let keep: String = query
        .split('&')
        .filter(|kv| !["offset=", "cursor=", "f=", "limit="].iter().any(|p| kv.starts_with(p)) && !kv.is_empty())
        .map(|kv| format!("&{}", esc(kv)))
        .collect();
    let mut pager = String::new();
    if offset > 0 {
        let _ = write!(
            pager,
            "<a href=\"?f=html&limit={limit}&offset={}{keep}\">上一页 prev</a> ",
            offset.saturating_sub(limit)
        );
    }
    if let Some(cursor) = next {
        let _ = write!(pager, "<a href=\"?f=html&limit={limit}&cursor={}{keep}\">下一页 next</a>", esc(cursor));
    }
    page(
        &format!("{} 要素", l.display_name()),
        &[("/collections?f=html", "数据集合"), (&format!("/collections/{}?f=html", l.name()), l.display_name())],
        &format!(
            "<h1>{} <span class=en>items</span></h1><p>第 {} – {} 条 <span class=en>features {}–{}</span></p><table>{head}{rows}</table><p>{pager}</p>",
            esc(l.display_name()),
            offset + 1,
            offset + features.len(),
            offset + 1,
            offset + features.len()
        ),
    )
}

pub fn item(l: &Layer, f: &StoredFeature) -> String {
    let mut rows = format!(
        "<tr><th>实体标识 entity_id</th><td><code>{}</code></td></tr><tr><th>编码 code</th><td>{}</td></tr>\
         <tr><th>版本 version</th><td>{} ({})</td></tr>",
        f.feature.id,
        esc(&f.feature.code),
        f.version,
        esc(&time::beijing(f.tx_time))
    );
    for fd in &l.schema().fields {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(fd.title.as_deref().unwrap_or(&fd.name)),
            cell(f.feature.properties.get(&fd.name))
        );
    }
    let g = f.feature.geometry.as_ref().map(shikong_model::wkt::to_wkt).unwrap_or_default();
    let _ = write!(rows, "<tr><th>几何 geometry</th><td><code>{}</code></td></tr>", esc(&g));
    page(
        &f.feature.code,
        &[
            ("/collections?f=html", "数据集合"),
            (&format!("/collections/{}?f=html", l.name()), l.display_name()),
            (&format!("/collections/{}/items?f=html", l.name()), "要素"),
        ],
        &format!("<h1>{}</h1><table>{rows}</table>", esc(&f.feature.code)),
    )
}
