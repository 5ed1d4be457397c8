//! The `$filter` (and `$orderby`) expression tree, its canonical text form (fully
//! parenthesised; parsing it gives the same tree back) and a fold ([`ExprFold`]) through which a
//! backend translates a filter bottom-up (to SQL, later) without matching on the tree itself.

use std::fmt;

use jiff::{SignedDuration, Timestamp, civil};

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Literal),
    /// A property path: navigation properties, then a property, then members of a JSON property
    /// (`Datastream/Thing/name`, `properties/owner`). `@iot.id` is read as `id`.
    Property(Vec<String>),
    Not(Box<Expr>),
    /// Arithmetic negation (`-x`; a negative number literal is folded into the literal).
    Neg(Box<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    /// Two or more operands.
    Or(Vec<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    /// Always finite.
    Float(f64),
    String(String),
    /// `2016-01-01T01:01:01.000Z` (unquoted, OData's DateTimeOffset).
    DateTime(Timestamp),
    /// `2016-01-01`.
    Date(civil::Date),
    /// `2016-01-01T00:00:00Z/2016-01-02T00:00:00Z`.
    Interval(Timestamp, Timestamp),
    /// `duration'P1DT2H'` (days of 24 hours).
    Duration(SignedDuration),
    /// `geography'POINT(8 54.1)'` (or `geometry'…'`).
    Geometry(GeoLiteral),
}

/// A WKT literal and its geometry. Equal when the WKT text is equal.
#[derive(Debug, Clone)]
pub struct GeoLiteral {
    pub wkt: String,
    pub geometry: geo::Geometry<f64>,
}

impl PartialEq for GeoLiteral {
    fn eq(&self, other: &Self) -> bool {
        self.wkt == other.wkt
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    pub fn keyword(self) -> &'static str {
        match self {
            ArithOp::Add => "add",
            ArithOp::Sub => "sub",
            ArithOp::Mul => "mul",
            ArithOp::Div => "div",
            ArithOp::Mod => "mod",
        }
    }
}

macro_rules! functions {
    ($($v:ident = $name:literal ($min:literal, $max:literal)),* $(,)?) => {
        /// The functions of SensorThings' `$filter` (OData 4 string, date, math functions and the
        /// OGC geospatial ones).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function { $($v),* }

        impl Function {
            /// All functions.
            pub const ALL: &'static [Function] = &[$(Function::$v),*];

            /// The name as written in a filter.
            pub fn name(self) -> &'static str {
                match self { $(Function::$v => $name),* }
            }

            /// Least and most number of arguments.
            pub fn arity(self) -> (usize, usize) {
                match self { $(Function::$v => ($min, $max)),* }
            }

            /// The function called `name` (ASCII case ignored).
            pub fn from_name(name: &str) -> Option<Function> {
                Function::ALL.iter().copied().find(|f| f.name().eq_ignore_ascii_case(name))
            }
        }
    };
}

functions! {
    SubstringOf = "substringof" (2, 2),
    Contains = "contains" (2, 2),
    StartsWith = "startswith" (2, 2),
    EndsWith = "endswith" (2, 2),
    Length = "length" (1, 1),
    IndexOf = "indexof" (2, 2),
    Substring = "substring" (2, 3),
    ToLower = "tolower" (1, 1),
    ToUpper = "toupper" (1, 1),
    Trim = "trim" (1, 1),
    Concat = "concat" (2, 2),
    Year = "year" (1, 1),
    Month = "month" (1, 1),
    Day = "day" (1, 1),
    Hour = "hour" (1, 1),
    Minute = "minute" (1, 1),
    Second = "second" (1, 1),
    FractionalSeconds = "fractionalseconds" (1, 1),
    Date = "date" (1, 1),
    Time = "time" (1, 1),
    TotalOffsetMinutes = "totaloffsetminutes" (1, 1),
    Now = "now" (0, 0),
    MinDateTime = "mindatetime" (0, 0),
    MaxDateTime = "maxdatetime" (0, 0),
    Round = "round" (1, 1),
    Floor = "floor" (1, 1),
    Ceiling = "ceiling" (1, 1),
    GeoDistance = "geo.distance" (2, 2),
    GeoLength = "geo.length" (1, 1),
    GeoIntersects = "geo.intersects" (2, 2),
    StEquals = "st_equals" (2, 2),
    StDisjoint = "st_disjoint" (2, 2),
    StTouches = "st_touches" (2, 2),
    StWithin = "st_within" (2, 2),
    StOverlaps = "st_overlaps" (2, 2),
    StCrosses = "st_crosses" (2, 2),
    StIntersects = "st_intersects" (2, 2),
    StContains = "st_contains" (2, 2),
    StRelate = "st_relate" (3, 3),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            // Debug keeps `.0` and uses exponents for large magnitudes, so the text reads back
            // as the same float (and never as an integer).
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::DateTime(t) => write!(f, "{t}"),
            Literal::Date(d) => write!(f, "{d}"),
            Literal::Interval(a, b) => write!(f, "{a}/{b}"),
            Literal::Duration(d) => write!(f, "duration'{d}'"),
            Literal::Geometry(g) => write!(f, "geography'{}'", g.wkt.replace('\'', "''")),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Property(p) => f.write_str(&p.join("/")),
            Expr::Not(e) => write!(f, "(not ({e}))"),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::And(v) => {
                f.write_str("(")?;
                join(f, v, " and ")?;
                f.write_str(")")
            }
            Expr::Or(v) => {
                f.write_str("(")?;
                join(f, v, " or ")?;
                f.write_str(")")
            }
            Expr::Compare(op, a, b) => write!(f, "({a} {} {b})", op.keyword()),
            Expr::Arith(op, a, b) => write!(f, "({a} {} {b})", op.keyword()),
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                join(f, args, ",")?;
                f.write_str(")")
            }
        }
    }
}

/// A bottom-up translation of an [`Expr`]: each method receives its operands already translated.
/// A SQL backend implements it to build a `WHERE` fragment with parameters.
pub trait ExprFold {
    type Out;
    type Err;
    fn literal(&mut self, lit: &Literal) -> Result<Self::Out, Self::Err>;
    fn property(&mut self, path: &[String]) -> Result<Self::Out, Self::Err>;
    fn not(&mut self, x: Self::Out) -> Result<Self::Out, Self::Err>;
    fn neg(&mut self, x: Self::Out) -> Result<Self::Out, Self::Err>;
    fn and(&mut self, xs: Vec<Self::Out>) -> Result<Self::Out, Self::Err>;
    fn or(&mut self, xs: Vec<Self::Out>) -> Result<Self::Out, Self::Err>;
    fn compare(&mut self, op: CmpOp, a: Self::Out, b: Self::Out) -> Result<Self::Out, Self::Err>;
    fn arith(&mut self, op: ArithOp, a: Self::Out, b: Self::Out) -> Result<Self::Out, Self::Err>;
    fn call(&mut self, func: Function, args: Vec<Self::Out>) -> Result<Self::Out, Self::Err>;
}

impl Expr {
    /// Translates the expression with `f`, operands first. The recursion is as deep as the
    /// tree, which the parser bounds ([`crate::filter::MAX_DEPTH`]).
    pub fn fold<F: ExprFold>(&self, f: &mut F) -> Result<F::Out, F::Err> {
        match self {
            Expr::Literal(l) => f.literal(l),
            Expr::Property(p) => f.property(p),
            Expr::Not(e) => {
                let x = e.fold(f)?;
                f.not(x)
            }
            Expr::Neg(e) => {
                let x = e.fold(f)?;
                f.neg(x)
            }
            Expr::And(v) => {
                let xs = v.iter().map(|e| e.fold(f)).collect::<Result<Vec<_>, _>>()?;
                f.and(xs)
            }
            Expr::Or(v) => {
                let xs = v.iter().map(|e| e.fold(f)).collect::<Result<Vec<_>, _>>()?;
                f.or(xs)
            }
            Expr::Compare(op, a, b) => {
                let (x, y) = (a.fold(f)?, b.fold(f)?);
                f.compare(*op, x, y)
            }
            Expr::Arith(op, a, b) => {
                let (x, y) = (a.fold(f)?, b.fold(f)?);
                f.arith(*op, x, y)
            }
            Expr::Call(func, args) => {
                let xs = args.iter().map(|e| e.fold(f)).collect::<Result<Vec<_>, _>>()?;
                f.call(*func, xs)
            }
        }
    }

    /// Every property path the expression reads, in order of appearance.
    pub fn property_paths(&self) -> Vec<&[String]> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Property(p) => out.push(p.as_slice()),
                Expr::Literal(_) => {}
                Expr::Not(x) | Expr::Neg(x) => stack.push(x),
                Expr::And(v) | Expr::Or(v) | Expr::Call(_, v) => stack.extend(v.iter().rev()),
                Expr::Compare(_, a, b) | Expr::Arith(_, a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
            }
        }
        out
    }
}
