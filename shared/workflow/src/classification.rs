//! Case classification (案件分类) as data: 部件 (components: manhole covers, street furniture …)
//! and 事件 (events: exposed rubbish, illegal parking …), each in major and minor classes with
//! codes, the condition under which a report is registered (立案条件), the condition for closing
//! (结案条件) and the handling time limit (处置时限) per minor class.
//!
//! The class tree follows GB/T 30428.2-2013 (数字化城市管理信息系统 第2部分：管理部件和事件, the
//! successor of CJ/T 214-2007); codes are two digits for a major class and four for a minor
//! class (major code + two digits), as there. The national standard fixes the classes; the
//! registration conditions and time limits are set locally by each city, so the shipped values
//! are typical local ones and every minor class says where its name and code come from
//! ([`Provenance`]). A city replaces the document with its own (a new `version`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ClassError;
use crate::flow::{Label, TimeLimit};

/// A classification document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    pub id: String,
    pub version: u32,
    /// The standard and edition the tree follows.
    pub source: String,
    /// What is from the standard, what is local practice, what could not be sourced.
    pub notes: String,
    /// 部件.
    pub components: Vec<MajorClass>,
    /// 事件.
    pub events: Vec<MajorClass>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MajorClass {
    pub code: String,
    pub label: Label,
    pub minors: Vec<MinorClass>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinorClass {
    pub code: String,
    pub label: Label,
    /// 立案条件: when a report of this class becomes a case.
    pub register_when: String,
    /// 结案条件: what the verifier checks before closing.
    pub close_when: String,
    /// 处置时限: the handling stage's limit.
    pub limit: TimeLimit,
    pub provenance: Provenance,
}

/// Where a minor class's name and code come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Name and code as in the standard, also seen in a published local table derived from it.
    Corroborated,
    /// Name and code recalled from the standard's appendix; not checked against its text.
    Recalled,
    /// Not from the standard: a catch-all class added here (code `99` within its major class).
    Local,
}

/// 部件 or 事件.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassKind {
    Component,
    Event,
}

impl Classification {
    pub fn from_json(text: &str) -> Result<Classification, ClassError> {
        let c: Classification = serde_json::from_str(text).map_err(|e| ClassError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// The minor class of a case, e.g. `(Event, "0102")` 暴露垃圾.
    pub fn minor(&self, kind: ClassKind, code: &str) -> Option<(&MajorClass, &MinorClass)> {
        let majors = match kind {
            ClassKind::Component => &self.components,
            ClassKind::Event => &self.events,
        };
        majors.iter().find_map(|m| m.minors.iter().find(|c| c.code == code).map(|c| (m, c)))
    }

    pub fn validate(&self) -> Result<(), ClassError> {
        nonempty("id", &self.id)?;
        nonempty("source", &self.source)?;
        for (list, majors) in [("components", &self.components), ("events", &self.events)] {
            let mut seen: BTreeMap<&str, String> = BTreeMap::new();
            for (i, major) in majors.iter().enumerate() {
                let path = format!("{list}[{i}]");
                check_code(&format!("{path}.code"), &major.code, 2)?;
                label(&format!("{path}.label"), &major.label)?;
                unique(&mut seen, &major.code, format!("{path}.code"))?;
                for (j, minor) in major.minors.iter().enumerate() {
                    let mpath = format!("{path}.minors[{j}]");
                    check_code(&format!("{mpath}.code"), &minor.code, 4)?;
                    if !minor.code.starts_with(&major.code) {
                        return Err(ClassError::MinorOutsideMajor {
                            path: format!("{mpath}.code"),
                            code: minor.code.clone(),
                            major: major.code.clone(),
                        });
                    }
                    unique(&mut seen, &minor.code, format!("{mpath}.code"))?;
                    label(&format!("{mpath}.label"), &minor.label)?;
                    nonempty(&format!("{mpath}.register_when"), &minor.register_when)?;
                    nonempty(&format!("{mpath}.close_when"), &minor.close_when)?;
                    if matches!(minor.limit, TimeLimit::WorkingHours(0) | TimeLimit::WorkingDays(0)) {
                        return Err(ClassError::ZeroLimit { path: format!("{mpath}.limit") });
                    }
                }
            }
        }
        Ok(())
    }
}

fn unique<'a>(seen: &mut BTreeMap<&'a str, String>, code: &'a str, path: String) -> Result<(), ClassError> {
    if let Some(first) = seen.get(code) {
        return Err(ClassError::DuplicateCode { path, code: code.into(), first: first.clone() });
    }
    seen.insert(code, path);
    Ok(())
}

fn check_code(path: &str, code: &str, digits: usize) -> Result<(), ClassError> {
    if code.len() == digits && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ClassError::InvalidCode { path: path.into(), code: code.into(), digits })
    }
}

fn nonempty(path: &str, text: &str) -> Result<(), ClassError> {
    if text.trim().is_empty() { Err(ClassError::Empty { path: path.into() }) } else { Ok(()) }
}

fn label(path: &str, label: &Label) -> Result<(), ClassError> {
    nonempty(&format!("{path}.zh"), &label.zh)?;
    nonempty(&format!("{path}.en"), &label.en)
}
