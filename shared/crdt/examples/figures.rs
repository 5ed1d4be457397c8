//! Prints the figures issue 5 asks for: saved sizes of an entity document (base, 1, 3, 10
//! edits) for a point feature with six attributes, and the time of each step the server takes
//! per pushed edit (load, apply, state, save). Run in release mode:
//! `cargo run --release -p shikong-crdt --example figures`.

use std::time::Instant;

use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
use shikong_model::{CodeItem, Coord, Feature, FieldDef, FieldType, Geometry, LayerSchema, ValidTime, Value};

fn field(id: &str, name: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.id = id.into();
    f
}

fn schema() -> LayerSchema {
    let mut status = field("f6", "状态", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    LayerSchema {
        fields: vec![
            field("f1", "名称", FieldType::Text),
            field("f2", "深度", FieldType::Real),
            field("f3", "数量", FieldType::Integer),
            field("f4", "完好", FieldType::Bool),
            field("f5", "巡检日期", FieldType::Date),
            status,
        ],
    }
}

fn feature() -> anyhow::Result<Feature> {
    Ok(Feature {
        id: "0192f3c4-0000-7000-8000-000000000001".parse()?,
        code: "420111-JG-0001".into(),
        geometry: Some(Geometry::Point(Coord::xy(114.3055, 30.5928))),
        valid: ValidTime { from: Some(shikong_model::parse_instant("2024-01-01")?), to: None },
        properties: [
            ("名称".to_string(), Value::from("珞喻路雨水井")),
            ("深度".into(), Value::Real(1.5)),
            ("数量".into(), Value::Integer(1)),
            ("完好".into(), Value::Bool(true)),
            ("巡检日期".into(), Value::Date("2025-05-30".parse()?)),
            ("状态".into(), Value::from("1")),
        ]
        .into(),
    })
}

/// The i-th edit of a field inspection: alternately a depth, a status and a small move.
fn edit(i: u32) -> Edit {
    let n = f64::from(i + 1);
    match i % 3 {
        0 => Edit::SetFields([("深度".to_string(), Value::Real(1.5 + n * 0.1))].into()),
        1 => Edit::SetFields([("状态".to_string(), Value::from(if i.is_multiple_of(2) { "1" } else { "2" }))].into()),
        _ => Edit::SetGeometry(Some(Geometry::Point(Coord::xy(114.3055 + n * 1e-5, 30.5928)))),
    }
}

fn meta(i: u32) -> anyhow::Result<EditMeta> {
    Ok(EditMeta {
        user: "张三".into(),
        device: Some("平板-01".into()),
        time: jiff::Timestamp::from_second(1_748_736_000 + i64::from(i) * 60)?,
    })
}

fn micros<T>(iterations: u32, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(f()?);
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations))
}

fn main() -> anyhow::Result<()> {
    let s = schema();
    let f = feature()?;
    let device = Actor([0xa1; 16]);

    println!("## Saved size of one entity document (point, 6 attributes)");
    let mut doc = EntityDoc::base(&s, &f)?;
    println!("base            {:>5} B", doc.save().len());
    let mut changes = Vec::new();
    for i in 0..10 {
        changes.extend(doc.edit(&s, device, &meta(i)?, edit(i))?);
        if [1, 3, 10].contains(&(i + 1)) {
            println!("base + {:>2} edits {:>5} B", i + 1, doc.save().len());
        }
    }
    let avg = changes.iter().map(Vec::len).sum::<usize>() / changes.len();
    println!("one edit change  {avg:>5} B on average (what a device pushes per edit)");

    let n = 5_000;
    let bytes = EntityDoc::base(&s, &f)?.save();
    let mut edited = doc.clone();
    let edited_bytes = edited.save();
    let next = {
        let mut d = EntityDoc::load(&bytes)?;
        d.edit(&s, device, &meta(99)?, edit(98))?.unwrap_or_default()
    };
    let next_on_edited = {
        let mut d = EntityDoc::load(&edited_bytes)?;
        d.edit(&s, device, &meta(99)?, edit(98))?.unwrap_or_default()
    };
    println!("\n## Time per call, release build, mean of {n} ({} edits in the larger document)", changes.len());
    println!("step                 base doc   doc with 10 edits");
    let base_us = micros(n, || EntityDoc::base(&s, &f).map_err(anyhow::Error::from))?;
    println!("base()              {base_us:>7.1} µs");
    let row = |name: &str, a: f64, b: f64| println!("{name:<20}{a:>7.1} µs  {b:>7.1} µs");
    row(
        "load()",
        micros(n, || EntityDoc::load(&bytes).map_err(anyhow::Error::from))?,
        micros(n, || EntityDoc::load(&edited_bytes).map_err(anyhow::Error::from))?,
    );
    let loaded = EntityDoc::load(&bytes)?;
    let loaded_edited = EntityDoc::load(&edited_bytes)?;
    row(
        "apply 1 change",
        micros(n, || loaded.clone().apply_changes(std::slice::from_ref(&next)).map_err(anyhow::Error::from))?
            - micros(n, || {
                drop(loaded.clone());
                Ok(())
            })?,
        micros(n, || {
            loaded_edited.clone().apply_changes(std::slice::from_ref(&next_on_edited)).map_err(anyhow::Error::from)
        })? - micros(n, || {
            drop(loaded_edited.clone());
            Ok(())
        })?,
    );
    row(
        "state()",
        micros(n, || loaded.state(&s).map_err(anyhow::Error::from))?,
        micros(n, || loaded_edited.state(&s).map_err(anyhow::Error::from))?,
    );
    let (mut a, mut b) = (loaded.clone(), loaded_edited.clone());
    row("save()", micros(n, || Ok(a.save()))?, micros(n, || Ok(b.save()))?);
    row(
        "conflicts()",
        micros(n, || loaded.conflicts(&s).map_err(anyhow::Error::from))?,
        micros(n, || loaded_edited.conflicts(&s).map_err(anyhow::Error::from))?,
    );

    // What the server does per pushed edit: load the stored document, apply, read the state to
    // write the store version, save the document back.
    let merge = |stored: &[u8], change: &Vec<u8>| -> anyhow::Result<()> {
        let mut d = EntityDoc::load(stored)?;
        d.apply_changes(std::slice::from_ref(change))?;
        d.state(&s)?;
        drop(d.save());
        Ok(())
    };
    let per_edit = micros(n, || merge(&bytes, &next))?;
    let per_edit_edited = micros(n, || merge(&edited_bytes, &next_on_edited))?;
    println!(
        "\nserver merge (load + apply + state + save): {per_edit:.1} µs = {:.0} edits/s (base doc); {per_edit_edited:.1} µs = {:.0} edits/s (10-edit doc), one core",
        1e6 / per_edit,
        1e6 / per_edit_edited
    );
    Ok(())
}
