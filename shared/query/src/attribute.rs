//! What a property name in a filter refers to: a field of the layer schema or one of the system
//! attributes every feature has (identity, code, valid time, version, geometry).
//!
//! Resolution happens once, when a filter is parsed, so evaluation and SQL planning never look
//! names up again and a misspelt property is reported before any row is read.

use std::fmt;

use shikong_model::{CodeItem, FieldType, LayerSchema};

use crate::error::QueryError;

/// A schema field as a filter sees it. The stable `id` lets a [`crate::ColumnMap`] read history
/// rows whose properties are keyed by field id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    pub name: String,
    pub id: String,
    pub ty: FieldType,
}

/// What a property name resolves to. Non-exhaustive: a [`crate::ColumnMap`] answers `None` for
/// attributes it does not know, which keeps new ones correct (checked in Rust).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attribute {
    /// A field of the layer.
    Field(FieldRef),
    /// `entity_id`: the entity's UUID, compared as lowercase hyphenated text.
    EntityId,
    /// `code`: the entity code (地理实体编码).
    Code,
    /// `valid_from`: start of valid time; absent means "since always".
    ValidFrom,
    /// `valid_to`: end of valid time (exclusive); absent means "still valid".
    ValidTo,
    /// `version`: the version number of the stored state.
    Version,
    /// `geometry` (alias `geom`).
    Geometry,
}

impl Attribute {
    /// The name a filter uses for this attribute.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Field(f) => &f.name,
            Attribute::EntityId => "entity_id",
            Attribute::Code => "code",
            Attribute::ValidFrom => "valid_from",
            Attribute::ValidTo => "valid_to",
            Attribute::Version => "version",
            Attribute::Geometry => "geometry",
        }
    }

    /// The type of the values the attribute holds; `None` for attachment fields.
    pub fn queryable_type(&self) -> Option<QueryableType> {
        Some(match self {
            Attribute::Field(f) => match f.ty {
                FieldType::Text | FieldType::Code => QueryableType::Text,
                FieldType::Integer => QueryableType::Integer,
                FieldType::Real => QueryableType::Real,
                FieldType::Bool => QueryableType::Bool,
                FieldType::Date => QueryableType::Date,
                FieldType::DateTime => QueryableType::DateTime,
                FieldType::Attachments => return None,
            },
            Attribute::EntityId | Attribute::Code => QueryableType::Text,
            Attribute::ValidFrom | Attribute::ValidTo => QueryableType::DateTime,
            Attribute::Version => QueryableType::Integer,
            Attribute::Geometry => QueryableType::Geometry,
        })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of a queryable, as the OGC `/queryables` document and filter type checking see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryableType {
    Text,
    Integer,
    Real,
    Bool,
    /// A calendar date `YYYY-MM-DD`.
    Date,
    /// An instant.
    DateTime,
    Geometry,
}

impl QueryableType {
    pub fn name(self) -> &'static str {
        match self {
            QueryableType::Text => "text",
            QueryableType::Integer => "integer",
            QueryableType::Real => "real",
            QueryableType::Bool => "bool",
            QueryableType::Date => "date",
            QueryableType::DateTime => "datetime",
            QueryableType::Geometry => "geometry",
        }
    }
}

/// One property a filter may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Queryable {
    pub name: String,
    /// Label for people (Chinese for system attributes; the field title for fields).
    pub title: Option<String>,
    pub ty: QueryableType,
    /// The allowed values of a code-list field (an `enum` in the queryables document).
    pub codes: Vec<CodeItem>,
    pub attribute: Attribute,
}

const SYSTEM: [(Attribute, &str); 6] = [
    (Attribute::EntityId, "实体标识"),
    (Attribute::Code, "实体编码"),
    (Attribute::Geometry, "几何"),
    (Attribute::ValidFrom, "有效起始时间"),
    (Attribute::ValidTo, "有效终止时间"),
    (Attribute::Version, "版本"),
];

/// The properties a filter on a layer with `schema` may use: the system attributes, then the
/// active fields in column order. Attachment fields are left out (they cannot be filtered).
pub fn queryables(schema: &LayerSchema) -> Vec<Queryable> {
    let system = SYSTEM.iter().filter_map(|(attr, title)| {
        Some(Queryable {
            name: attr.name().to_owned(),
            title: Some((*title).to_owned()),
            ty: attr.queryable_type()?,
            codes: Vec::new(),
            attribute: attr.clone(),
        })
    });
    let fields = schema.active().filter_map(|f| {
        let attribute = field_attr(f);
        Some(Queryable {
            name: f.name.clone(),
            title: f.title.clone(),
            ty: attribute.queryable_type()?,
            codes: f.codes.clone(),
            attribute,
        })
    });
    system.chain(fields).collect()
}

fn field_attr(f: &shikong_model::FieldDef) -> Attribute {
    Attribute::Field(FieldRef { name: f.name.clone(), id: f.id.clone(), ty: f.ty })
}

/// Resolves a property name: system attributes first (their names are reserved, so no field can
/// shadow them), then a field by exact name, by name ignoring ASCII case (SQLite compares column
/// names so), and finally by its title when exactly one field carries it (users often know the
/// Chinese label, 埋深, rather than the column name, depth). Retired fields resolve too: history
/// queries still read them.
pub(crate) fn resolve(schema: &LayerSchema, name: &str) -> Result<Attribute, QueryError> {
    let system = match name.to_ascii_lowercase().as_str() {
        "entity_id" => Some(Attribute::EntityId),
        "code" => Some(Attribute::Code),
        "valid_from" => Some(Attribute::ValidFrom),
        "valid_to" => Some(Attribute::ValidTo),
        "version" => Some(Attribute::Version),
        "geometry" | "geom" => Some(Attribute::Geometry),
        _ => None,
    };
    if let Some(a) = system {
        return Ok(a);
    }
    let field =
        schema.field(name).or_else(|| schema.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))).or_else(|| {
            let mut titled = schema.fields.iter().filter(|f| f.title.as_deref() == Some(name));
            match (titled.next(), titled.next()) {
                (Some(f), None) => Some(f),
                _ => None,
            }
        });
    match field {
        Some(f) if f.ty == FieldType::Attachments => Err(QueryError::NotQueryable {
            property: f.name.clone(),
            reason: "it holds attachments (photos, documents)".into(),
        }),
        Some(f) => Ok(field_attr(f)),
        None => Err(QueryError::UnknownProperty {
            name: name.to_owned(),
            hint: String::new(),
            queryables: queryables(schema).into_iter().map(|q| q.name).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::FieldDef;

    fn schema() -> LayerSchema {
        let mut depth = FieldDef::new("depth", FieldType::Real);
        depth.title = Some("埋深".into());
        let mut old = FieldDef::new("旧编号", FieldType::Text);
        old.retired = true;
        LayerSchema {
            fields: vec![
                FieldDef::new("名称", FieldType::Text),
                depth,
                FieldDef::new("照片", FieldType::Attachments),
                old,
            ],
        }
    }

    #[track_caller]
    fn check(name: &str, expected: Result<&str, &str>) {
        match (resolve(&schema(), name), expected) {
            (Ok(a), Ok(want)) => assert_eq!(a.name(), want),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "`{e}` lacks `{want}`"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn names_resolve_to_fields_and_system_attributes() {
        check("名称", Ok("名称"));
        check("DEPTH", Ok("depth"));
        check("埋深", Ok("depth"));
        check("旧编号", Ok("旧编号"));
        check("geom", Ok("geometry"));
        check("Valid_From", Ok("valid_from"));
        check("颜色", Err("unknown property `颜色`; queryable properties: entity_id, code, geometry"));
        check("颜色", Err("version, 名称, depth"));
        check("照片", Err("property `照片` cannot be filtered: it holds attachments"));
    }

    #[test]
    fn queryables_list_system_attributes_then_active_fields() {
        let q = queryables(&schema());
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["entity_id", "code", "geometry", "valid_from", "valid_to", "version", "名称", "depth"]);
        assert_eq!(q[7].title.as_deref(), Some("埋深"));
        assert_eq!(q[7].ty, QueryableType::Real);
        assert_eq!(q[3].ty, QueryableType::DateTime);
        assert_eq!(q[0].title.as_deref(), Some("实体标识"));
    }
}
