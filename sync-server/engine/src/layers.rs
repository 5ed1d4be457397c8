//! Conversions between the store's layer definitions and the wire's [`LayerDoc`].

use shikong_model::{GeometryKind, LayerSchema};
use shikong_protocol::api::LayerDoc;
use shikong_store::{Layer, LayerDef};

/// The definition of a stored layer as the wire and `shikong layer show` carry it.
pub fn layer_doc(l: &Layer) -> LayerDoc {
    let d = &l.def;
    LayerDoc {
        name: d.name.clone(),
        title: d.title.clone(),
        description: d.description.clone(),
        geometry_type: d.geometry_kind.name().to_owned(),
        has_z: d.has_z,
        theme: d.theme.clone(),
        height_datum: d.height_datum.clone(),
        public: d.public,
        citizen_reports: d.citizen_reports,
        fields: d.schema.fields.clone(),
    }
}

/// A definition a user wrote (`shikong layer edit`) as the store takes it.
pub fn layer_def(doc: LayerDoc) -> Result<LayerDef, shikong_model::ModelError> {
    let kind: GeometryKind = doc.geometry_type.parse()?;
    Ok(LayerDef {
        name: doc.name,
        title: doc.title,
        description: doc.description,
        geometry_kind: kind,
        has_z: doc.has_z,
        schema: LayerSchema { fields: doc.fields },
        theme: doc.theme,
        height_datum: doc.height_datum,
        public: doc.public,
        citizen_reports: doc.citizen_reports,
    })
}
