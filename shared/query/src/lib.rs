//! OGC CQL2 filters for shikong: parse, resolve against a layer schema, evaluate, plan SQL.
//!
//! Office staff filter layers by attribute, space and time; the OGC API – Features server
//! (Part 3, Filtering), the CLI `shikong query --filter` and the offline mobile replicas all take
//! CQL2 (text or JSON encoding). This crate turns such a filter into a [`Filter`]: a typed
//! [`Predicate`] whose property names are resolved to [`Attribute`]s of one layer and whose
//! literals already have the type of what they are compared with. A filter then
//!
//! - evaluates on a decoded [`Feature`] ([`Filter::matches`], the reference semantics), and
//! - plans SQL for the SQLite/GeoPackage tables of the store and the replicas ([`Filter::plan`]):
//!   a `WHERE` fragment, its parameters, the residual to check in Rust, and an envelope for the
//!   R-tree;
//! - plans SQL for the PostgreSQL + PostGIS store ([`Filter::plan_postgres`]): typed columns,
//!   `$n` placeholders with typed [`PgParam`]s, spatial predicates in PostGIS behind the `&&`
//!   envelope operator (GiST).
//!
//! Parsing is the `cql2` crate's (developmentseed/cql2-rs); this crate converts its AST into our
//! own IR, so that no other crate depends on `cql2`'s types.
//!
//! # Semantics
//!
//! - Three-valued logic, as SQL: a comparison with a null property is unknown, `NOT unknown` is
//!   unknown, and only true selects. So `NOT (depth = 1)` does not select features without a
//!   depth; `depth IS NULL OR NOT (depth = 1)` does.
//! - `valid_from`/`valid_to` absent mean "since always"/"still valid": in comparisons and
//!   temporal operators they are −∞/+∞ (so `valid_to > TIMESTAMP('2025-01-01T00:00:00Z')` selects
//!   what is still valid); `IS NULL` still sees the absence. `INTERVAL(valid_from, valid_to)` is
//!   the valid-time interval, end exclusive, and `t_intersects(INTERVAL(valid_from, valid_to), …)`
//!   is what OGC's `datetime` parameter means ([`Filter::valid`]).
//! - Text compares by code point (SQLite's BINARY collation). `LIKE` is case-sensitive, `%` and `_`
//!   match characters (one 汉字 for `_`), `\` escapes. `casei(x)` lowers ASCII letters only, as
//!   SQLite's `lower()` does; Chinese has no case.
//! - Numbers: integers and reals compare exactly with each other; arithmetic (`+ - * /`) is real
//!   arithmetic, division by zero is null. A quoted `'3'` is text and never equals a number.
//! - Dates: `DATE('2025-06-01')` or `'2025-06-01'`; against a date-time property a date means that
//!   day in Beijing time (its 00:00 in comparisons, the whole day in temporal operators).
//!   Instants must carry an offset (`Z`, `+08:00`); they are compared at millisecond precision.
//! - Spatial operators are DE-9IM predicates in 2-D (Z ignored), via the `geo` crate. Literal
//!   geometries are taken to be in the layer's CRS; a server receiving `filter-crs` reprojects
//!   them with [`Filter::try_map_geometries`]. `BBOX(…)` is its rectangle.
//! - Property names: system attributes `entity_id`, `code`, `valid_from`, `valid_to`, `version`,
//!   `geometry` (or `geom`); then fields by name (exact, then ignoring ASCII case) or by their
//!   title. Chinese names work quoted (`"名称"`) or bare (`名称 = '井盖'`).
//!
//! # Binding the SQL
//!
//! [`SqlPlan::sql`] uses anonymous `?` placeholders. Bind [`SqlPlan::params`] in order through
//! [`sql_param`]: booleans as INTEGER 0/1, dates as TEXT `YYYY-MM-DD`, instants as TEXT in the
//! GeoPackage form `2025-06-01T00:00:00.000Z` (fixed width UTC, so text order is time order),
//! text as TEXT, numbers as INTEGER/REAL. The columns must hold values by the same conventions
//! (what `shikong-store` writes). LIKE is planned as `GLOB`, which is case-sensitive whatever
//! `PRAGMA case_sensitive_like` says.
//!
//! For PostgreSQL, [`Filter::plan_postgres`] numbers placeholders `$n` from a given first index
//! and casts each to its type (`$2::double precision`); bind [`PgPlan::params`] as [`PgParam`]
//! says. Columns have PostgreSQL types ([`ColumnMap`]); open ends are `'-infinity'`/`'infinity'`;
//! text compares under `COLLATE "C"`; LIKE is PostgreSQL's `LIKE` with `\` escaping; geometry
//! literals are `ST_GeomFromWKB($n::bytea, 4490)`.
//!
//! ```
//! use shikong_model::{FieldDef, FieldType, LayerSchema};
//! use shikong_query::{Attribute, Filter, quote_identifier};
//!
//! let schema = LayerSchema { fields: vec![FieldDef::new("名称", FieldType::Text), FieldDef::new("depth", FieldType::Real)] };
//! let filter = Filter::parse_text("名称 LIKE '井%' AND depth > 1.5", &schema).unwrap();
//! let plan = filter.plan(&|a: &Attribute| Some(quote_identifier(a.name())));
//! assert_eq!(plan.sql.as_deref(), Some(r#"("名称" GLOB ?) AND ("depth" > ?)"#));
//! assert!(plan.residual.is_none());
//! ```
#![forbid(unsafe_code)]

mod attribute;
mod error;
mod eval;
mod like;
pub mod limits;
mod pg;
mod predicate;
mod resolve;
mod sql;
mod temporal;

use std::fmt;

pub use attribute::{Attribute, FieldRef, Queryable, QueryableType, queryables};
pub use error::{QueryError, Result};
pub use like::LikePattern;
pub use limits::Limit;
pub use pg::{POSTGIS_SRID, PgParam, PgPlan};
pub use predicate::{ArithOp, CmpOp, Operand, Predicate, SpatialLiteral, SpatialOp, TemporalOp, TimeSpan};
pub use sql::{ColumnMap, SqlParam, SqlPlan, quote_identifier, sql_param};

use jiff::Timestamp;
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, Feature, Geometry, LayerSchema, Value};

/// A CQL2 filter resolved against one layer schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    predicate: Predicate,
}

impl Filter {
    /// Parses cql2-text and resolves it against `schema`.
    pub fn parse_text(text: &str, schema: &LayerSchema) -> Result<Filter> {
        let expr = resolve::parse_text(text)?;
        Self::resolve(&expr, schema)
    }

    /// Parses cql2-json and resolves it against `schema`.
    pub fn parse_json(json: &str, schema: &LayerSchema) -> Result<Filter> {
        let expr = resolve::parse_json(json)?;
        Self::resolve(&expr, schema)
    }

    fn resolve(expr: &cql2::Expr, schema: &LayerSchema) -> Result<Filter> {
        resolve::Resolver { schema }.predicate(expr).map(Filter::from_predicate)
    }

    /// A filter from a predicate built in code (a form, a map selection). Its literals should
    /// have the types of their attributes; a mismatched comparison is unknown, never true.
    pub fn from_predicate(predicate: Predicate) -> Filter {
        Filter { predicate }
    }

    /// The filter selecting everything.
    pub fn all() -> Filter {
        Filter::from_predicate(Predicate::Const(true))
    }

    /// `s_intersects(geometry, BBOX(…))`: OGC's `bbox` parameter.
    pub fn bbox(b: &Bbox) -> Result<Filter> {
        let literal = SpatialLiteral::new(Geometry::from_bbox(b))?;
        Ok(Filter::from_predicate(Predicate::Spatial { op: SpatialOp::Intersects, literal }))
    }

    /// `t_intersects(INTERVAL(valid_from, valid_to), …)`: OGC's `datetime` parameter on valid
    /// time (an instant selects the states valid then; a range those valid at some time in it).
    pub fn valid(v: &ValidFilter) -> Filter {
        let (a, b) = match *v {
            ValidFilter::At(t) => (Some(t), Some(t)),
            ValidFilter::Range(a, b) => (a, b),
        };
        let lit = |t: Option<Timestamp>, open: Timestamp| {
            Operand::Literal(Value::DateTime(t.map_or(open, resolve::floor_ms)))
        };
        Filter::from_predicate(Predicate::Temporal {
            op: TemporalOp::Intersects,
            left: TimeSpan {
                start: Operand::Attr(Attribute::ValidFrom),
                end: Operand::Attr(Attribute::ValidTo),
                end_exclusive: true,
            },
            right: TimeSpan { start: lit(a, Timestamp::MIN), end: lit(b, Timestamp::MAX), end_exclusive: false },
        })
    }

    /// Both filters (the OGC `filter`, `bbox` and `datetime` parameters together).
    pub fn and(self, other: Filter) -> Filter {
        let mut items = Vec::new();
        for p in [self.predicate, other.predicate] {
            match p {
                Predicate::Const(true) => {}
                Predicate::And(ps) => items.extend(ps),
                p => items.push(p),
            }
        }
        match items.len() {
            0 => Filter::all(),
            1 => Filter::from_predicate(items.remove(0)),
            _ => Filter::from_predicate(Predicate::And(items)),
        }
    }

    pub fn predicate(&self) -> &Predicate {
        &self.predicate
    }

    /// Whether the filter selects everything without looking at features.
    pub fn is_all(&self) -> bool {
        matches!(&self.predicate, Predicate::Const(true))
            || matches!(&self.predicate, Predicate::And(ps) if ps.is_empty())
    }

    /// The distinct attributes the filter reads, in order of first use (a store can skip decoding
    /// geometries when `Attribute::Geometry` is absent).
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut out: Vec<Attribute> = Vec::new();
        self.predicate.for_each_attribute(&mut |a| {
            if !out.contains(a) {
                out.push(a.clone());
            }
        });
        out
    }

    /// Whether `feature` (at `version`, for the `version` attribute) is selected.
    pub fn matches(&self, feature: &Feature, version: Option<i64>) -> bool {
        eval::eval(&self.predicate, &eval::Row { feature, version }) == Some(true)
    }

    /// The SQL for a table whose columns `cols` names; see [`SqlPlan`].
    pub fn plan(&self, cols: &dyn ColumnMap) -> SqlPlan {
        sql::plan(self, cols)
    }

    /// The SQL for a PostgreSQL + PostGIS table whose typed columns `cols` names (see
    /// [`ColumnMap`] for the types), placeholders numbered from `$first_param` (the caller's own
    /// parameters come first); see [`PgPlan`].
    pub fn plan_postgres(&self, cols: &dyn ColumnMap, first_param: usize) -> PgPlan {
        pg::plan(self, cols, first_param)
    }

    /// The same filter with every geometry literal passed through `f` (reprojection from the
    /// request's `filter-crs` into the layer's CRS).
    pub fn try_map_geometries<E: From<QueryError>>(
        &self,
        mut f: impl FnMut(&Geometry) -> std::result::Result<Geometry, E>,
    ) -> std::result::Result<Filter, E> {
        fn walk<E: From<QueryError>>(
            p: &Predicate,
            f: &mut impl FnMut(&Geometry) -> std::result::Result<Geometry, E>,
        ) -> std::result::Result<Predicate, E> {
            Ok(match p {
                Predicate::And(ps) => {
                    Predicate::And(ps.iter().map(|q| walk(q, f)).collect::<std::result::Result<_, E>>()?)
                }
                Predicate::Or(ps) => {
                    Predicate::Or(ps.iter().map(|q| walk(q, f)).collect::<std::result::Result<_, E>>()?)
                }
                Predicate::Not(q) => Predicate::Not(Box::new(walk(q, f)?)),
                Predicate::Spatial { op, literal } => {
                    Predicate::Spatial { op: *op, literal: SpatialLiteral::new(f(literal.geometry())?)? }
                }
                other => other.clone(),
            })
        }
        walk(&self.predicate, &mut f).map(Filter::from_predicate)
    }
}

/// CQL2 text of the resolved filter (literals typed, names resolved), for logs and `--explain`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.predicate.fmt(f)
    }
}

#[cfg(test)]
mod tests;
