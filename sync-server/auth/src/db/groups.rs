//! Named groups of users (a team, a district office), used as permission subjects.

use super::{AuthStore, Conn, Note, audit_row, get_user, ms, params};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;
use crate::types::{Actor, Group};

const MAX_GROUP_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 500;

/// The id and canonical name of group `name` (ASCII case ignored).
pub(crate) fn find_group(conn: &Conn, name: &str) -> Result<(i64, String)> {
    match conn.query_opt("SELECT id, name FROM groups WHERE name = ?1", params![name])? {
        Some(r) => Ok((r.i64(0)?, r.text(1)?)),
        None => Err(AuthError::NoSuchGroup(name.into())),
    }
}

fn load_group(conn: &Conn, id: i64) -> Result<Group> {
    let r = conn.query_one("SELECT name, description, created_at FROM groups WHERE id = ?1", params![id])?;
    let (name, description, created_at) = (r.text(0)?, r.opt_text(1)?, r.ts(2)?);
    let members = conn
        .query(
            "SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 \
             ORDER BY u.username",
            params![id],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>>>()?;
    Ok(Group { name, description, members, created_at })
}

impl AuthStore {
    /// Creates an empty group (admins).
    pub fn create_group(&self, actor: &Actor, name: &str, description: Option<&str>) -> Result<Group> {
        self.require_admin(actor, AuditAction::GroupCreate, "create groups", Note::default().target(name))?;
        validate_label("group name", name, MAX_GROUP_NAME)?;
        if let Some(d) = description {
            validate_label("description", d, MAX_DESCRIPTION)?;
        }
        let now = self.now();
        self.write(|tx| {
            match find_group(tx, name) {
                Ok((_, existing)) => return Err(AuthError::GroupExists(existing)),
                Err(AuthError::NoSuchGroup(_)) => {}
                Err(e) => return Err(e),
            }
            let id = tx
                .query_one(
                    "INSERT INTO groups (name, description, created_at) VALUES (?1, ?2, ?3) RETURNING id",
                    params![name, description, ms(now)],
                )?
                .i64(0)?;
            audit_row(tx, now, actor, &AuditAction::GroupCreate, Outcome::Ok, Note::default().target(name))?;
            load_group(tx, id)
        })
    }

    /// Deletes a group, its memberships and the permission rules naming it (admins).
    pub fn delete_group(&self, actor: &Actor, name: &str) -> Result<()> {
        self.require_admin(actor, AuditAction::GroupDelete, "delete groups", Note::default().target(name))?;
        let now = self.now();
        self.write(|tx| {
            let (id, canonical) = find_group(tx, name)?;
            let rules = tx.query_one("SELECT count(*) FROM layer_rules WHERE group_id = ?1", params![id])?.i64(0)?;
            tx.execute("DELETE FROM groups WHERE id = ?1", params![id])?;
            let note = Note::default().target(canonical).detail(format!("{rules} permission rules removed with it"));
            audit_row(tx, now, actor, &AuditAction::GroupDelete, Outcome::Ok, note)?;
            Ok(())
        })
    }

    /// Adds a user to a group (admins). Adding a member twice is not an error.
    pub fn add_to_group(&self, actor: &Actor, group: &str, username: &str) -> Result<Group> {
        self.require_admin(
            actor,
            AuditAction::GroupAddMember,
            "change group members",
            Note::user(username).target(group),
        )?;
        let now = self.now();
        self.write(|tx| {
            let (id, canonical) = find_group(tx, group)?;
            let user = get_user(tx, username)?;
            tx.execute(
                "INSERT INTO group_members (group_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![id, user.id.0],
            )?;
            audit_row(
                tx,
                now,
                actor,
                &AuditAction::GroupAddMember,
                Outcome::Ok,
                Note::user(&user.username).target(canonical),
            )?;
            load_group(tx, id)
        })
    }

    /// Removes a user from a group (admins). Removing a non-member is not an error.
    pub fn remove_from_group(&self, actor: &Actor, group: &str, username: &str) -> Result<Group> {
        self.require_admin(
            actor,
            AuditAction::GroupRemoveMember,
            "change group members",
            Note::user(username).target(group),
        )?;
        let now = self.now();
        self.write(|tx| {
            let (id, canonical) = find_group(tx, group)?;
            let user = get_user(tx, username)?;
            tx.execute("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2", params![id, user.id.0])?;
            let note = Note::user(&user.username).target(canonical);
            audit_row(tx, now, actor, &AuditAction::GroupRemoveMember, Outcome::Ok, note)?;
            load_group(tx, id)
        })
    }

    /// All groups with their members, by name (admins).
    pub fn groups(&self, actor: &Actor) -> Result<Vec<Group>> {
        actor.require_admin("list groups")?;
        let conn = self.conn()?;
        let ids = conn.query("SELECT id FROM groups ORDER BY name", &[])?;
        ids.iter().map(|r| load_group(&conn, r.i64(0)?)).collect()
    }
}
