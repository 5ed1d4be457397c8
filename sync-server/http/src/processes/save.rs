//! `save_as`: a process's result stored as a layer, so maps, tiles, the items API and offline
//! replicas show it at once and its history keeps every run.
//!
//! The first run creates the layer: the source layer's geometry kind and fields plus the
//! process's columns, its features under the source features' ids. A later run into the same
//! layer writes a new version of each feature (unchanged ones get none), inserts features that
//! are new and deletes those no longer in the result — one transaction, so the layer moves from
//! one run's state to the next and `as-of` reads give any earlier run back.
//!
//! Only result layers are written this way: a layer not created by `save_as` (its description
//! does not carry [`MARKER`]) is a 409, so a typo cannot overwrite a layer of record. Creating a
//! layer is office or admin work; the caller must also be allowed to edit an existing result
//! layer, re-checked in the writing transaction's thread.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use shikong_auth::Role;
use shikong_model::{FieldDef, LayerSchema};
use shikong_store::{FeatureKey, LayerDef, NewFeature, Patch, Query, TxMeta};

use super::run::{Ctx, Outcome, Output};
use crate::access::{Action, Caller};
use crate::audit_outbox;
use crate::problem::{ApiError, ApiResult};

/// Starts the description of every layer `save_as` made.
pub(crate) const MARKER: &str = "分析结果图层";

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-input", detail.into()).with("input", "save_as")
}

/// Stores the result as the layer `save_as` named (when given) and records its name in the result.
pub(crate) fn save(ctx: &Ctx<'_>, process: &str, outcome: &mut Outcome) -> ApiResult<()> {
    let Some(out) = outcome.saving.take() else { return Ok(()) };
    let name = out.name.clone();
    ctx.check()?;
    (ctx.progress)(90, "保存结果图层 (saving the result layer)");
    let caller = Caller { principal: ctx.principal.clone(), client: Default::default() };
    caller
        .require_role(&[Role::Admin, Role::Office], "saving a result as a layer (`save_as`) is office or admin work")?;
    if name == out.layer.name() {
        return Err(bad("`save_as` names the layer being analysed; give the result a layer of its own"));
    }
    let store = ctx.state.store();
    let existing = match store.layer(&name) {
        Ok(l) => Some(l),
        Err(shikong_store::StoreError::NoSuchLayer(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(l) = &existing {
        if !l.def.description.as_deref().is_some_and(|d| d.starts_with(MARKER)) {
            return Err(ApiError::conflict(format!(
                "layer `{name}` exists and is not a result layer; choose another `save_as`"
            ))
            .with("input", "save_as"));
        }
        caller.allowed(ctx.state, l, Action::Edit)?;
    }
    // The schema: the source's active fields, then the process's columns (a same-named source
    // field — a process run on its own result — is the column).
    let mut fields: Vec<FieldDef> = out
        .layer
        .schema()
        .active()
        .filter(|f| !out.added.iter().any(|a| a.name == f.name))
        .map(|f| FieldDef { id: String::new(), ..f.clone() })
        .collect();
    for a in &out.added {
        let mut f = FieldDef::new(a.name, a.ty);
        f.title = Some(a.title.to_owned());
        fields.push(f);
    }
    let author = caller.author();
    let mut tx = store.begin(TxMeta::by(author).source(format!("process {process} save_as {name}")))?;
    let layer = match &existing {
        None => {
            let mut def = LayerDef::new(name.clone(), out.layer.def.geometry_kind, LayerSchema { fields });
            def.has_z = out.layer.def.has_z;
            def.title = Some(format!("{} · {process}", out.layer.display_name()));
            def.description = Some(format!("{MARKER}：处理 `{process}` 对图层 `{}` 的结果", out.layer.name()));
            let l = tx.create_layer(def).map_err(|e| match e {
                e @ (shikong_store::StoreError::InvalidLayerName { .. }
                | shikong_store::StoreError::Invalid { .. }
                | shikong_store::StoreError::SchemaChange { .. }) => bad(e.to_string()),
                e => e.into(),
            })?;
            tx.bulk_load(&name)?;
            l
        }
        Some(l) => {
            // Columns this run adds that the layer lacks are added; nothing is removed.
            let missing: Vec<FieldDef> = fields.into_iter().filter(|f| l.schema().field(&f.name).is_none()).collect();
            if missing.is_empty() {
                l.clone()
            } else {
                let mut def = l.def.clone();
                def.schema.fields.extend(missing);
                tx.update_layer(&name, def)?
            }
        }
    };
    let props_of = |n: usize| {
        let f = &out.features[n];
        let mut p = f.feature.properties.clone();
        p.retain(|k, _| layer.schema().field(k).is_some());
        for a in &out.added {
            p.insert(a.name.to_owned(), a.values[n].clone());
        }
        p
    };
    let mut before: HashSet<shikong_model::EntityId> = HashSet::new();
    if existing.is_some() {
        store.query(&Query::layer(&name), &mut |f| {
            before.insert(f.feature.id);
            true
        })?;
    }
    let ids: Vec<_> = out.features.iter().map(|f| f.feature.id).collect();
    let live: HashMap<_, _> = if existing.is_some() { tx.get_many(&name, &ids)? } else { HashMap::new() };
    for (n, f) in out.features.iter().enumerate() {
        if n % 4096 == 0 {
            ctx.check()?;
        }
        let id = f.feature.id;
        if live.contains_key(&id) {
            let patch = Patch {
                geometry: Some(f.feature.geometry.clone()),
                valid: Some(f.feature.valid),
                set: props_of(n),
                ..Patch::default()
            };
            tx.update(&name, &FeatureKey::Id(id), patch)?;
        } else {
            let new = NewFeature {
                id: Some(id),
                code: Some(f.feature.code.clone()),
                geometry: f.feature.geometry.clone(),
                valid: f.feature.valid,
                properties: props_of(n),
                device_time: None,
            };
            tx.insert(&name, new)?;
        }
    }
    let kept: HashSet<_> = ids.iter().copied().collect();
    for gone in before.difference(&kept) {
        tx.delete(&name, &FeatureKey::Id(*gone))?;
    }
    ctx.check()?;
    audit_outbox::queue(tx.as_mut(), &caller, caller.write_record(&name, &format!("process {process}"), &[]))?;
    let info = tx.commit()?;
    ctx.state.committed();
    if info.tx.is_some() {
        audit_outbox::drain(ctx.state);
    }
    if let Output::Features(c) = &mut outcome.output {
        c.saved_as = Some(name);
    }
    Ok(())
}
