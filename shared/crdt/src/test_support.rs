//! Fixtures shared by the unit tests: a layer with one field of every type (Chinese names, stable
//! ids), a manhole-cover feature, devices and their edit metadata.

use jiff::Timestamp;
use shikong_model::{
    CodeItem, Coord, EntityId, Feature, FieldDef, FieldType, Geometry, LayerSchema, Properties, ValidTime, Value,
};

use crate::{Actor, EditMeta};

pub(crate) const A: Actor = Actor([0xa1; 16]);
pub(crate) const B: Actor = Actor([0xb2; 16]);
pub(crate) const C: Actor = Actor([0xc3; 16]);

pub(crate) fn t(s: &str) -> Timestamp {
    shikong_model::parse_instant(s).unwrap()
}

pub(crate) fn field(id: &str, name: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.id = id.into();
    f
}

pub(crate) fn schema() -> LayerSchema {
    let mut status = field("f7", "状态", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    LayerSchema {
        fields: vec![
            field("f1", "名称", FieldType::Text),
            field("f2", "深度", FieldType::Real),
            field("f3", "数量", FieldType::Integer),
            field("f4", "完好", FieldType::Bool),
            field("f5", "巡检日期", FieldType::Date),
            field("f6", "巡检时间", FieldType::DateTime),
            status,
            field("f8", "照片", FieldType::Attachments),
        ],
    }
}

pub(crate) fn id() -> EntityId {
    "0192f3c4-0000-7000-8000-000000000001".parse().unwrap()
}

pub(crate) fn props(list: &[(&str, Value)]) -> Properties {
    list.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub(crate) fn point(x: f64, y: f64) -> Option<Geometry> {
    Some(Geometry::Point(Coord::xy(x, y)))
}

/// A manhole cover in Wuhan with six attributes.
pub(crate) fn feature() -> Feature {
    Feature {
        id: id(),
        code: "420111-JG-0001".into(),
        geometry: point(114.3055, 30.5928),
        valid: ValidTime { from: Some(t("2024-01-01")), to: None },
        properties: props(&[
            ("名称", "井盖".into()),
            ("深度", Value::Real(1.5)),
            ("数量", Value::Integer(1)),
            ("完好", Value::Bool(true)),
            ("巡检日期", Value::Date("2025-05-30".parse().unwrap())),
            ("状态", "1".into()),
        ]),
    }
}

pub(crate) fn meta(user: &str, device: &str, time: &str) -> EditMeta {
    EditMeta { user: user.into(), device: Some(device.into()), time: t(time) }
}

pub(crate) fn zhang() -> EditMeta {
    meta("张三", "平板-01", "2025-06-01T09:00:00+08:00")
}

pub(crate) fn li() -> EditMeta {
    meta("李四", "手机-02", "2025-06-01T09:05:00+08:00")
}
