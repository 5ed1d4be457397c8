//! Persistence of per-layer permission rules, and the authorization entry point that combines
//! them with [`crate::permission::decide`].
//!
//! Rules are keyed by layer name: renaming or deleting a layer in the store leaves its rules
//! behind under the old name (the server should remove or move them when it does either).

use super::groups::find_group;
use super::{AuthStore, Conn, Note, Row, actor_name, audit_row, ms, params};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;
use crate::permission::{Action, Decision, Effective, Grants, LayerAccess, Rule, Subject, decide, effective};
use crate::types::{Actor, Principal, Role};

const MAX_LAYER_NAME: usize = 128;

fn rule_row(r: &Row) -> Result<Rule> {
    let key = r.text(1)?;
    let subject = match (key.as_str(), r.opt_text(2)?, r.opt_text(3)?) {
        ("authenticated", _, _) => Subject::AnyAuthenticated,
        (_, Some(_), _) => Subject::Role(r.parsed(2)?),
        (_, None, Some(group)) => Subject::Group(group),
        _ => {
            return Err(AuthError::Corrupt(format!(
                "permission rule subject `{key}` names neither a role nor an existing group"
            )));
        }
    };
    Ok(Rule {
        layer: r.text(0)?,
        subject,
        grants: Grants { read: r.bool(4)?, create: r.bool(5)?, edit: r.bool(6)?, publish: r.bool(7)? },
    })
}

const RULE_SELECT: &str = "SELECT r.layer, r.subject_key, r.role, g.name, r.can_read, r.can_create, r.can_edit, \
     r.can_publish FROM layer_rules r LEFT JOIN groups g ON g.id = r.group_id";

/// The stored key, role and group id of a subject (the group must exist).
fn subject_key(conn: &Conn, s: &Subject) -> Result<(String, Option<Role>, Option<i64>, String)> {
    Ok(match s {
        Subject::Role(r) => (format!("role:{r}"), Some(*r), None, s.to_string()),
        Subject::Group(name) => {
            let (id, canonical) = find_group(conn, name)?;
            (format!("group:{id}"), None, Some(id), Subject::Group(canonical).to_string())
        }
        Subject::AnyAuthenticated => ("authenticated".into(), None, None, s.to_string()),
    })
}

impl AuthStore {
    /// Sets (replaces) the rule for `rule.subject` on `rule.layer` (admins). The rule is that
    /// subject's whole access to the layer; see [`crate::permission`] for how rules combine.
    pub fn set_rule(&self, actor: &Actor, rule: &Rule) -> Result<()> {
        let note = || Note { layer: Some(&rule.layer), ..Note::default() }.target(&rule.subject);
        self.require_admin(actor, AuditAction::PermissionSet, "change permissions", note())?;
        validate_label("layer name", &rule.layer, MAX_LAYER_NAME)?;
        if rule.subject == Subject::Role(Role::Admin) {
            return Err(AuthError::InvalidArgument(
                "admins may always do everything; a rule for role admin would have no effect".into(),
            ));
        }
        let now = self.now();
        let by = actor_name(actor);
        self.write(|tx| {
            let (key, role, group, shown) = subject_key(tx, &rule.subject)?;
            let g = rule.grants;
            tx.execute(
                "INSERT INTO layer_rules (layer, subject_key, role, group_id, can_read, can_create, can_edit, can_publish, \
                 updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (layer, subject_key) DO UPDATE SET can_read = excluded.can_read, \
                 can_create = excluded.can_create, can_edit = excluded.can_edit, can_publish = excluded.can_publish, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                params![
                    rule.layer,
                    key,
                    role.map(Role::as_str),
                    group,
                    g.read,
                    g.create,
                    g.edit,
                    g.publish,
                    ms(now),
                    by
                ],
            )?;
            let note = Note { layer: Some(&rule.layer), ..Note::default() }.target(shown).detail(g.to_string());
            audit_row(tx, now, actor, &AuditAction::PermissionSet, Outcome::Ok, note)?;
            Ok(())
        })
    }

    /// Removes the rule for `subject` on `layer` (admins): the subject falls back to the next
    /// tier or the role defaults.
    pub fn remove_rule(&self, actor: &Actor, layer: &str, subject: &Subject) -> Result<()> {
        let note = || Note { layer: Some(layer), ..Note::default() }.target(subject);
        self.require_admin(actor, AuditAction::PermissionRemove, "change permissions", note())?;
        let now = self.now();
        self.write(|tx| {
            let (key, _, _, shown) = subject_key(tx, subject)?;
            let n = tx.execute("DELETE FROM layer_rules WHERE layer = ?1 AND subject_key = ?2", params![layer, key])?;
            if n == 0 {
                return Err(AuthError::NoSuchRule { layer: layer.into(), subject: shown });
            }
            let note = Note { layer: Some(layer), ..Note::default() }.target(shown);
            audit_row(tx, now, actor, &AuditAction::PermissionRemove, Outcome::Ok, note)?;
            Ok(())
        })
    }

    /// All rules, or those of one layer, by layer then subject (admins).
    pub fn list_rules(&self, actor: &Actor, layer: Option<&str>) -> Result<Vec<Rule>> {
        actor.require_admin("list permission rules")?;
        let sql =
            format!("{RULE_SELECT} WHERE CAST(?1 AS TEXT) IS NULL OR r.layer = ?1 ORDER BY r.layer, r.subject_key");
        self.conn()?.query(&sql, params![layer])?.iter().map(rule_row).collect()
    }

    /// The rules of one layer, for [`crate::decide`] (no actor: this is what every request's
    /// permission check reads).
    pub fn rules_for(&self, layer: &str) -> Result<Vec<Rule>> {
        let sql = format!("{RULE_SELECT} WHERE r.layer = ?1");
        self.conn()?.query(&sql, params![layer])?.iter().map(rule_row).collect()
    }

    /// Whether `principal` (or an anonymous caller) may do `action` on `layer`, under the layer's
    /// stored rules.
    pub fn authorize(
        &self,
        principal: Option<&Principal>,
        layer: &LayerAccess<'_>,
        action: Action,
    ) -> Result<Decision> {
        Ok(decide(principal, layer, action, &self.rules_for(layer.name)?))
    }

    /// Everything `principal` may do on `layer`, and why (for "what can I do here" in the apps).
    pub fn effective_access(&self, principal: Option<&Principal>, layer: &LayerAccess<'_>) -> Result<Effective> {
        Ok(effective(principal, layer, &self.rules_for(layer.name)?))
    }
}
