//! The other two ways to update an entity besides a PATCH merge (`body::validate_update`):
//! `PUT` (replace: properties the body leaves out are cleared) and JSON Patch (RFC 6902,
//! `Content-Type: application/json-patch+json`, 18-088 §10.3.2), both turned into the same
//! [`Update`] so storage has one way to apply them. Standard clients use both: frost-sta-client's
//! `update` is a PUT of the whole entity, its `patch` a JSON Patch.
//!
//! Pure: the caller passes the entity's stored properties. Bounded: a patch holds at most
//! [`MAX_PATCH_OPS`] operations; every pointer is checked before use (a bad one names the
//! operation at fault, `/3/path`).

use serde_json::{Map, Value};

use crate::body::{Update, validate_update};
use crate::entity::EntityType;
use crate::error::{Result, StaError};

/// Most operations one JSON Patch body may hold.
pub const MAX_PATCH_OPS: usize = 1_000;

/// A PUT body: the new state of the entity. Optional properties it leaves out are cleared
/// (`null` in the update), required ones must be present; navigation links in it are set as a
/// PATCH sets them; `@iot.id` is ignored.
pub fn validate_replace(ty: EntityType, body: &Value, current: &Map<String, Value>) -> Result<Update> {
    let mut up = validate_update(ty, body)?;
    for req in ty.required_properties() {
        if !up.properties.contains_key(*req) && ty != EntityType::Observation {
            return Err(StaError::body("", format!("PUT replaces the entity: {ty} needs `{req}`")));
        }
    }
    for p in ty.properties() {
        if *p == "id" || ty.read_only_properties().contains(p) {
            continue;
        }
        if !up.properties.contains_key(*p) && current.contains_key(*p) {
            up.properties.insert((*p).to_owned(), Value::Null);
        }
    }
    Ok(up)
}

/// A JSON Patch applied to the entity's properties (`current`), as an [`Update`]: the members
/// the patch changed or added, and `null` for those it removed. The patched entity is validated
/// like a PATCH body (types, required members not removed).
pub fn json_patch_update(ty: EntityType, current: &Map<String, Value>, ops: &Value) -> Result<Update> {
    let mut doc = Value::Object(current.clone());
    apply_json_patch(&mut doc, ops)?;
    let Value::Object(after) = doc else {
        return Err(StaError::body("", "a JSON Patch of an entity leaves an object"));
    };
    let mut changed = Map::new();
    for (k, v) in &after {
        if current.get(k) != Some(v) {
            changed.insert(k.clone(), v.clone());
        }
    }
    for k in current.keys() {
        if !after.contains_key(k) {
            changed.insert(k.clone(), Value::Null);
        }
    }
    validate_update(ty, &Value::Object(changed))
}

/// RFC 6902 on `doc`: `add`, `remove`, `replace`, `move`, `copy`, `test`. All or nothing for the
/// caller (it patches a copy).
pub fn apply_json_patch(doc: &mut Value, ops: &Value) -> Result<()> {
    let Some(list) = ops.as_array() else {
        return Err(StaError::body("", "a JSON Patch is an array of operations"));
    };
    if list.len() > MAX_PATCH_OPS {
        return Err(StaError::too_large("JSON Patch operations", list.len() as u64, MAX_PATCH_OPS as u64));
    }
    for (i, op) in list.iter().enumerate() {
        let at = |m: &str| format!("/{i}/{m}");
        let Some(o) = op.as_object() else {
            return Err(StaError::body(format!("/{i}"), "a JSON Patch operation is an object"));
        };
        let text = |m: &str| -> Result<Vec<String>> {
            let s = o
                .get(m)
                .and_then(Value::as_str)
                .ok_or_else(|| StaError::body(at(m), format!("`{m}` is a JSON pointer")))?;
            pointer(s).ok_or_else(|| StaError::body(at(m), format!("`{s}` is not a JSON pointer")))
        };
        let value =
            || o.get("value").cloned().ok_or_else(|| StaError::body(at("value"), "the operation needs `value`"));
        let path = text("path")?;
        match o.get("op").and_then(Value::as_str) {
            Some("add") => add(doc, &path, value()?).map_err(|m| StaError::body(at("path"), m))?,
            Some("remove") => {
                remove(doc, &path).map_err(|m| StaError::body(at("path"), m))?;
            }
            Some("replace") => {
                remove(doc, &path).map_err(|m| StaError::body(at("path"), m))?;
                add(doc, &path, value()?).map_err(|m| StaError::body(at("path"), m))?;
            }
            Some("move") => {
                let from = text("from")?;
                if path.len() > from.len() && path[..from.len()] == from[..] {
                    return Err(StaError::body(at("from"), "a value cannot move into itself"));
                }
                let v = remove(doc, &from).map_err(|m| StaError::body(at("from"), m))?;
                add(doc, &path, v).map_err(|m| StaError::body(at("path"), m))?;
            }
            Some("copy") => {
                let from = text("from")?;
                let v = get(doc, &from).cloned().ok_or_else(|| StaError::body(at("from"), "nothing at `from`"))?;
                add(doc, &path, v).map_err(|m| StaError::body(at("path"), m))?;
            }
            Some("test") => {
                if get(doc, &path) != Some(&value()?) {
                    return Err(StaError::body(at("value"), "the test failed: the entity holds another value"));
                }
            }
            _ => return Err(StaError::body(at("op"), "`op` is add, remove, replace, move, copy or test")),
        }
    }
    Ok(())
}

/// The tokens of a JSON pointer (`""` is the whole document).
fn pointer(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let rest = s.strip_prefix('/')?;
    Some(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut v = doc;
    for t in path {
        v = match v {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("nothing at `{t}`"))?;
    }
    Ok(v)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, up)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, up)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) if last == "-" => {
            a.push(value);
            Ok(())
        }
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i <= a.len() => {
                a.insert(i, value);
                Ok(())
            }
            _ => Err(format!("`{last}` is not an index of the array")),
        },
        _ => Err("the parent is not an object or an array".into()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, up)) = path.split_last() else {
        return Err("the whole entity cannot be removed".into());
    };
    match parent(doc, up)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| format!("nothing at `{last}`")),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(format!("`{last}` is not an index of the array")),
        },
        _ => Err("the parent is not an object or an array".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn json_patch_changes_adds_and_removes_members() {
        let cur = props(json!({"name": "井盖", "description": "d", "properties": {"a": 1, "b": [1, 2]}}));
        let up = json_patch_update(
            EntityType::Thing,
            &cur,
            &json!([
                {"op": "test", "path": "/name", "value": "井盖"},
                {"op": "replace", "path": "/description", "value": "倾斜"},
                {"op": "add", "path": "/properties/b/-", "value": 3},
                {"op": "remove", "path": "/properties/a"},
                {"op": "copy", "from": "/name", "path": "/properties/c~1d"}
            ]),
        )
        .unwrap();
        assert_eq!(up.properties["description"], json!("倾斜"));
        assert_eq!(up.properties["properties"], json!({"b": [1, 2, 3], "c/d": "井盖"}));
        assert!(!up.properties.contains_key("name"), "unchanged members are not in the update");
    }

    #[test]
    fn json_patch_refusals_name_the_operation() {
        let cur = props(json!({"name": "t"}));
        let err = |ops: Value| match json_patch_update(EntityType::Thing, &cur, &ops) {
            Err(StaError::Body { path, .. }) => path,
            other => panic!("expected a body error, got {other:?}"),
        };
        assert_eq!(err(json!([{"op": "test", "path": "/name", "value": "x"}])), "/0/value");
        assert_eq!(
            err(json!([{"op": "add", "path": "/name", "value": "x"}, {"op": "jump", "path": "/name"}])),
            "/1/op"
        );
        assert_eq!(err(json!([{"op": "remove", "path": "/nothing/deep"}])), "/0/path");
        assert_eq!(err(json!([{"op": "replace", "path": "name", "value": 1}])), "/0/path");
        // The patched entity is validated like a PATCH body: `name` is required, `color` unknown.
        assert_eq!(err(json!([{"op": "remove", "path": "/name"}])), "/name");
        assert_eq!(err(json!([{"op": "add", "path": "/color", "value": 1}])), "/color");
        assert_eq!(err(json!({"op": "add"})), "");
        let many: Vec<Value> = (0..=MAX_PATCH_OPS).map(|_| json!({"op": "test", "path": "", "value": 1})).collect();
        assert!(matches!(
            json_patch_update(EntityType::Thing, &cur, &Value::Array(many)),
            Err(StaError::TooLarge { .. })
        ));
    }

    #[test]
    fn put_replaces_and_clears_what_it_leaves_out() {
        let cur = props(json!({"name": "t", "description": "d", "properties": {"a": 1}}));
        let up = validate_replace(EntityType::Thing, &json!({"@iot.id": 3, "name": "新"}), &cur).unwrap();
        assert_eq!(up.properties["name"], json!("新"));
        assert_eq!(up.properties["description"], Value::Null);
        assert_eq!(up.properties["properties"], Value::Null);
        assert!(matches!(
            validate_replace(EntityType::Thing, &json!({"description": "x"}), &cur),
            Err(StaError::Body { .. })
        ));
    }
}
