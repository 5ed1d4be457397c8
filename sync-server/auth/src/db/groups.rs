//! Named groups of users (a team, a district office), used as permission subjects.

use rusqlite::{Connection, OptionalExtension, params};

use super::{AuthStore, Note, audit_row, get_user, ms, ts_col};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;
use crate::types::{Actor, Group};

const MAX_GROUP_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 500;

/// The id and canonical name of group `name` (ASCII case ignored).
pub(crate) fn find_group(conn: &Connection, name: &str) -> Result<(i64, String)> {
    conn.query_row("SELECT id, name FROM groups WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| AuthError::NoSuchGroup(name.into()))
}

fn load_group(conn: &Connection, id: i64) -> Result<Group> {
    let (name, description, created_at) =
        conn.query_row("SELECT name, description, created_at FROM groups WHERE id = ?1", [id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, ts_col(r, 2)?))
        })?;
    let mut st = conn.prepare_cached(
        "SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.username",
    )?;
    let members = st.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
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
            tx.execute(
                "INSERT INTO groups (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![name, description, ms(now)],
            )?;
            let id = tx.last_insert_rowid();
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
            let rules: i64 =
                tx.query_row("SELECT count(*) FROM layer_rules WHERE group_id = ?1", [id], |r| r.get(0))?;
            tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
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
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
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
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id FROM groups ORDER BY name")?;
        let ids = st.query_map([], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        ids.into_iter().map(|id| load_group(&conn, id)).collect()
    }
}
