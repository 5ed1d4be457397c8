//! Who may do what on a layer: role defaults, per-layer rules, and the one decision function.
//!
//! Pure: the caller loads the rules (see `AuthStore::rules_for`) and the layer's flags from the
//! store. How an answer is reached, in order:
//!
//! 1. **Anonymous** (no principal): may read public layers, nothing else. Rules do not apply.
//! 2. **Admin**: allowed everything. Rules cannot restrict admins (someone must be able to repair
//!    a bad rule).
//! 3. **Reading a public layer** is allowed to every logged-in user: a rule cannot make a user see
//!    less than an anonymous visitor sees.
//! 4. **Rules** for this layer that name the principal decide, most specific subject first:
//!    - rules for any of the principal's **groups** — if there are several, their grants add up;
//!    - else the rule for the principal's **role**;
//!    - else the rule for **any authenticated** user.
//!
//!    The first of these tiers that has a rule decides alone: a rule is the *whole* access of its
//!    subject on the layer, so whatever it does not grant is denied (that is how a rule takes
//!    something away, e.g. makes a layer read-only for inspectors).
//! 5. **Defaults** when no rule names the principal: office and inspector read and edit every
//!    layer (create, update, delete); a citizen reads public layers and creates features only in
//!    layers marked for citizen reports; publishing is for admins.
//!
//! `edit` (update and delete) implies `create`; `create` alone is "create only" (reports).

use std::fmt;
use std::str::FromStr;

use crate::error::{AuthError, Result};
use crate::types::{Principal, Role};

/// What a request wants to do with a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read features, history, tiles.
    Read,
    /// Add new features.
    Create,
    /// Update or delete existing features.
    Edit,
    /// Make the layer public, manage its styles and flags.
    Publish,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Read, Action::Create, Action::Edit, Action::Publish];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Publish => "publish",
        }
    }

    /// The phrase in a denial: "may not {phrase} layer manhole".
    fn phrase(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create features in",
            Action::Edit => "edit",
            Action::Publish => "publish",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule (or a default) allows on a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Grants {
    pub read: bool,
    /// Create features (also implied by `edit`).
    pub create: bool,
    /// Update and delete features.
    pub edit: bool,
    pub publish: bool,
}

impl Grants {
    pub const NONE: Grants = Grants { read: false, create: false, edit: false, publish: false };
    pub const READ: Grants = Grants { read: true, ..Grants::NONE };
    pub const READ_EDIT: Grants = Grants { read: true, create: true, edit: true, publish: false };
    pub const ALL: Grants = Grants { read: true, create: true, edit: true, publish: true };

    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => self.read,
            Action::Create => self.create || self.edit,
            Action::Edit => self.edit,
            Action::Publish => self.publish,
        }
    }

    fn union(self, o: Grants) -> Grants {
        Grants {
            read: self.read || o.read,
            create: self.create || o.create,
            edit: self.edit || o.edit,
            publish: self.publish || o.publish,
        }
    }
}

impl fmt::Display for Grants {
    /// `read,edit,publish`; `read,create` for create-only; `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.read {
            parts.push("read");
        }
        if self.create && !self.edit {
            parts.push("create");
        }
        if self.edit {
            parts.push("edit");
        }
        if self.publish {
            parts.push("publish");
        }
        if parts.is_empty() { f.write_str("none") } else { f.write_str(&parts.join(",")) }
    }
}

impl FromStr for Grants {
    type Err = AuthError;
    /// A comma- or space-separated list of `read`, `create` (or `create_only`), `edit`,
    /// `publish`; or `none`.
    fn from_str(s: &str) -> Result<Self> {
        let mut g = Grants::NONE;
        let mut any = false;
        for word in s.split([',', ' ', '，']).map(str::trim).filter(|w| !w.is_empty()) {
            any = true;
            match word.to_ascii_lowercase().as_str() {
                "read" => g.read = true,
                "create" | "create_only" | "create-only" => g.create = true,
                "edit" => {
                    g.edit = true;
                    g.create = true;
                }
                "publish" => g.publish = true,
                "none" => {}
                _ => {
                    return Err(AuthError::InvalidArgument(format!(
                        "unknown permission `{word}` in `{s}` (expected read, create, edit, publish or none)"
                    )));
                }
            }
        }
        if !any {
            return Err(AuthError::InvalidArgument("empty permission list (say `none` to grant nothing)".into()));
        }
        Ok(g)
    }
}

/// Whom a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Role(Role),
    /// A group by name.
    Group(String),
    AnyAuthenticated,
}

impl fmt::Display for Subject {
    /// `role office`, `group 排水队`, `authenticated users` (as used in messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Role(r) => write!(f, "role {r}"),
            Subject::Group(g) => write!(f, "group {g}"),
            Subject::AnyAuthenticated => f.write_str("authenticated users"),
        }
    }
}

impl FromStr for Subject {
    type Err = AuthError;
    /// `role:office`, `group:排水队`, `authenticated`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("authenticated") {
            return Ok(Subject::AnyAuthenticated);
        }
        match t.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("role") => Ok(Subject::Role(v.parse()?)),
            Some((k, v)) if k.eq_ignore_ascii_case("group") && !v.trim().is_empty() => {
                Ok(Subject::Group(v.trim().to_owned()))
            }
            _ => Err(AuthError::InvalidArgument(format!(
                "invalid subject `{s}` (expected role:<role>, group:<name> or authenticated)"
            ))),
        }
    }
}

/// The whole access of `subject` on `layer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub layer: String,
    pub subject: Subject,
    pub grants: Grants,
}

/// The flags of a layer that permissions depend on (from the store's layer definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerAccess<'a> {
    pub name: &'a str,
    /// Readable by anonymous users and every logged-in user.
    pub public: bool,
    /// Citizens may create features (reports) in it.
    pub citizen_reports: bool,
}

/// Why something was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// A sentence for the 401/403 message: "role citizen may not edit layer manhole".
    pub reason: String,
    /// The caller is anonymous: logging in might help (answer 401, not 403).
    pub login_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// `Ok` or the error to answer with ([`AuthError::LoginRequired`] or [`AuthError::Forbidden`]).
    pub fn into_result(self) -> Result<()> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(d) if d.login_required => Err(AuthError::LoginRequired(d.reason)),
            Decision::Deny(d) => Err(AuthError::Forbidden(d.reason)),
        }
    }
}

/// Where a principal's access to a layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    Anonymous,
    Admin,
    /// No rule names the principal: the role's defaults.
    Default(Role),
    /// Rules for these subjects (one tier, see the module docs).
    Rules(Vec<Subject>),
}

/// Everything a principal may do on a layer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub grants: Grants,
    pub basis: Basis,
}

/// The role's access to a layer when no rule names it.
pub fn default_grants(role: Role, layer: &LayerAccess<'_>) -> Grants {
    match role {
        Role::Admin => Grants::ALL,
        Role::Office | Role::Inspector => Grants::READ_EDIT,
        Role::Citizen => Grants { read: layer.public, create: layer.citizen_reports, ..Grants::NONE },
    }
}

/// Everything `principal` may do on `layer` under `rules` (rules for other layers are ignored).
pub fn effective(principal: Option<&Principal>, layer: &LayerAccess<'_>, rules: &[Rule]) -> Effective {
    let Some(p) = principal else {
        return Effective { grants: Grants { read: layer.public, ..Grants::NONE }, basis: Basis::Anonymous };
    };
    if p.role == Role::Admin {
        return Effective { grants: Grants::ALL, basis: Basis::Admin };
    }
    let here = || rules.iter().filter(|r| r.layer == layer.name);
    let groups: Vec<&Rule> =
        here().filter(|r| matches!(&r.subject, Subject::Group(g) if p.groups.iter().any(|m| m == g))).collect();
    let tier: Vec<&Rule> = if !groups.is_empty() {
        groups
    } else if let Some(r) = here().find(|r| r.subject == Subject::Role(p.role)) {
        vec![r]
    } else if let Some(r) = here().find(|r| r.subject == Subject::AnyAuthenticated) {
        vec![r]
    } else {
        Vec::new()
    };
    let (mut grants, basis) = if tier.is_empty() {
        (default_grants(p.role, layer), Basis::Default(p.role))
    } else {
        let grants = tier.iter().fold(Grants::NONE, |g, r| g.union(r.grants));
        (grants, Basis::Rules(tier.iter().map(|r| r.subject.clone()).collect()))
    };
    grants.read |= layer.public;
    grants.create |= grants.edit;
    Effective { grants, basis }
}

/// Whether `principal` (or an anonymous caller) may do `action` on `layer`.
pub fn decide(principal: Option<&Principal>, layer: &LayerAccess<'_>, action: Action, rules: &[Rule]) -> Decision {
    let eff = effective(principal, layer, rules);
    if eff.grants.allows(action) {
        return Decision::Allow;
    }
    let name = layer.name;
    let phrase = action.phrase();
    let (reason, login_required) = match (&eff.basis, principal) {
        (Basis::Anonymous, _) if action == Action::Read => {
            (format!("layer {name} is not public; log in to read it"), true)
        }
        (Basis::Anonymous, _) => (format!("anonymous users may not {phrase} layer {name}; log in first"), true),
        (Basis::Default(role), _) => {
            let why = match (role, action) {
                (Role::Citizen, Action::Read) => " (it is not public)",
                (Role::Citizen, Action::Create) => " (it does not take citizen reports)",
                (_, Action::Publish) => " (only admins may publish unless a rule allows it)",
                _ => "",
            };
            (format!("role {role} may not {phrase} layer {name}{why}"), false)
        }
        (Basis::Rules(subjects), _) => {
            let who = match subjects.as_slice() {
                [one] => one.to_string(),
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|s| match s {
                            Subject::Group(g) => g.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("groups {}", names.join(", "))
                }
            };
            (format!("{who} may not {phrase} layer {name} (by the permission rules of this layer)"), false)
        }
        // Admins are allowed everything, so this is unreachable; deny rather than panic.
        (Basis::Admin, _) => (format!("may not {phrase} layer {name}"), false),
    };
    Decision::Deny(Denial { reason, login_required })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{TokenId, UserId};

    fn who(role: Role, groups: &[&str]) -> Principal {
        Principal {
            user_id: UserId(1),
            username: "张三".into(),
            role,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            device: None,
            token: TokenId(1),
        }
    }

    fn rule(layer: &str, subject: &str, grants: &str) -> Rule {
        Rule { layer: layer.into(), subject: subject.parse().unwrap(), grants: grants.parse().unwrap() }
    }

    /// `layer` is `name` plus flags: `p` public, `c` citizen reports (e.g. "manhole:pc").
    /// `expected` is `allow`, or the denial reason; a leading `401 ` marks login_required.
    fn check(p: Option<&Principal>, layer: &str, action: Action, rules: &[Rule], expected: &str) {
        let (name, flags) = layer.split_once(':').unwrap_or((layer, ""));
        let l = LayerAccess { name, public: flags.contains('p'), citizen_reports: flags.contains('c') };
        let got = match decide(p, &l, action, rules) {
            Decision::Allow => "allow".to_string(),
            Decision::Deny(d) if d.login_required => format!("401 {}", d.reason),
            Decision::Deny(d) => d.reason,
        };
        assert_eq!(got, expected, "{:?} {layer} {action} {rules:?}", p.map(|p| (p.role, &p.groups)));
    }

    use Action::*;

    #[test]
    fn defaults() {
        let admin = who(Role::Admin, &[]);
        let office = who(Role::Office, &[]);
        let insp = who(Role::Inspector, &[]);
        let cit = who(Role::Citizen, &[]);
        let none = &[];
        // anonymous: read public only
        check(None, "manhole:p", Read, none, "allow");
        check(None, "manhole", Read, none, "401 layer manhole is not public; log in to read it");
        check(
            None,
            "manhole:pc",
            Create,
            none,
            "401 anonymous users may not create features in layer manhole; log in first",
        );
        check(None, "manhole:p", Edit, none, "401 anonymous users may not edit layer manhole; log in first");
        check(None, "manhole:p", Publish, none, "401 anonymous users may not publish layer manhole; log in first");
        // admin: everything
        for a in Action::ALL {
            check(Some(&admin), "manhole", a, none, "allow");
        }
        // office and inspector: read and edit every layer, not publish
        for p in [&office, &insp] {
            for layer in ["manhole", "manhole:p", "manhole:c", "manhole:pc"] {
                check(Some(p), layer, Read, none, "allow");
                check(Some(p), layer, Create, none, "allow");
                check(Some(p), layer, Edit, none, "allow");
            }
        }
        check(
            Some(&office),
            "manhole:p",
            Publish,
            none,
            "role office may not publish layer manhole (only admins may publish unless a rule allows it)",
        );
        check(
            Some(&insp),
            "manhole",
            Publish,
            none,
            "role inspector may not publish layer manhole (only admins may publish unless a rule allows it)",
        );
        // citizen: read public, create only in citizen-report layers
        check(Some(&cit), "manhole:p", Read, none, "allow");
        check(Some(&cit), "manhole", Read, none, "role citizen may not read layer manhole (it is not public)");
        check(Some(&cit), "manhole:c", Read, none, "role citizen may not read layer manhole (it is not public)");
        check(Some(&cit), "reports:c", Create, none, "allow");
        check(Some(&cit), "reports:pc", Create, none, "allow");
        check(
            Some(&cit),
            "manhole:p",
            Create,
            none,
            "role citizen may not create features in layer manhole (it does not take citizen reports)",
        );
        check(Some(&cit), "manhole:p", Edit, none, "role citizen may not edit layer manhole");
        check(Some(&cit), "reports:pc", Edit, none, "role citizen may not edit layer reports");
        check(
            Some(&cit),
            "reports:pc",
            Publish,
            none,
            "role citizen may not publish layer reports (only admins may publish unless a rule allows it)",
        );
    }

    #[test]
    fn rules_override_defaults_for_the_subjects_they_name() {
        let insp = who(Role::Inspector, &[]);
        let office = who(Role::Office, &[]);
        let cit = who(Role::Citizen, &[]);
        let read_only = [rule("manhole", "role:inspector", "read")];
        check(
            Some(&insp),
            "manhole",
            Edit,
            &read_only,
            "role inspector may not edit layer manhole (by the permission rules of this layer)",
        );
        check(
            Some(&insp),
            "manhole",
            Create,
            &read_only,
            "role inspector may not create features in layer manhole (by the permission rules of this layer)",
        );
        check(Some(&insp), "manhole", Read, &read_only, "allow");
        // Other roles and other layers keep their defaults.
        check(Some(&office), "manhole", Edit, &read_only, "allow");
        check(Some(&insp), "roads", Edit, &read_only, "allow");
        // A rule can grant more than the default.
        let cit_edit = [rule("manhole", "role:citizen", "read,edit")];
        check(Some(&cit), "manhole", Read, &cit_edit, "allow");
        check(Some(&cit), "manhole", Edit, &cit_edit, "allow");
        check(Some(&cit), "manhole", Create, &cit_edit, "allow");
        let office_publish = [rule("manhole", "role:office", "read,edit,publish")];
        check(Some(&office), "manhole", Publish, &office_publish, "allow");
        // create-only
        let report = [rule("manhole", "role:inspector", "create")];
        check(Some(&insp), "manhole", Create, &report, "allow");
        check(
            Some(&insp),
            "manhole",
            Read,
            &report,
            "role inspector may not read layer manhole (by the permission rules of this layer)",
        );
        // A rule for `none` takes everything away (except reading a public layer).
        let nothing = [rule("manhole", "authenticated", "none")];
        check(
            Some(&office),
            "manhole",
            Read,
            &nothing,
            "authenticated users may not read layer manhole (by the permission rules of this layer)",
        );
        check(Some(&office), "manhole:p", Read, &nothing, "allow");
        check(
            Some(&office),
            "manhole:p",
            Edit,
            &nothing,
            "authenticated users may not edit layer manhole (by the permission rules of this layer)",
        );
    }

    #[test]
    fn precedence_group_then_role_then_authenticated() {
        let rules = [
            rule("manhole", "authenticated", "read"),
            rule("manhole", "role:citizen", "none"),
            rule("manhole", "group:排水队", "read,edit"),
            rule("manhole", "group:审核组", "publish"),
        ];
        let office = who(Role::Office, &[]);
        let cit = who(Role::Citizen, &[]);
        let cit_in_team = who(Role::Citizen, &["排水队"]);
        let in_both = who(Role::Inspector, &["排水队", "审核组"]);
        let in_other = who(Role::Inspector, &["绿化队"]);
        // authenticated tier for office (no role or group rule): read only
        check(Some(&office), "manhole", Read, &rules, "allow");
        check(
            Some(&office),
            "manhole",
            Edit,
            &rules,
            "authenticated users may not edit layer manhole (by the permission rules of this layer)",
        );
        // role tier beats authenticated
        check(
            Some(&cit),
            "manhole",
            Read,
            &rules,
            "role citizen may not read layer manhole (by the permission rules of this layer)",
        );
        // group tier beats role
        check(Some(&cit_in_team), "manhole", Edit, &rules, "allow");
        // groups add up within their tier
        check(Some(&in_both), "manhole", Edit, &rules, "allow");
        check(Some(&in_both), "manhole", Publish, &rules, "allow");
        check(
            Some(&cit_in_team),
            "manhole",
            Publish,
            &rules,
            "group 排水队 may not publish layer manhole (by the permission rules of this layer)",
        );
        // a group without a rule here does not count
        check(Some(&in_other), "manhole", Read, &rules, "allow");
        check(
            Some(&in_other),
            "manhole",
            Edit,
            &rules,
            "authenticated users may not edit layer manhole (by the permission rules of this layer)",
        );
        let two = [rule("manhole", "group:甲", "read"), rule("manhole", "group:乙", "read")];
        check(
            Some(&who(Role::Office, &["甲", "乙"])),
            "manhole",
            Edit,
            &two,
            "groups 甲, 乙 may not edit layer manhole (by the permission rules of this layer)",
        );
    }

    #[test]
    fn admins_and_anonymous_ignore_rules() {
        let rules = [rule("manhole", "role:admin", "none"), rule("manhole", "authenticated", "none")];
        check(Some(&who(Role::Admin, &[])), "manhole", Edit, &rules, "allow");
        check(None, "manhole:p", Read, &rules, "allow");
        check(
            None,
            "manhole",
            Read,
            &[rule("manhole", "authenticated", "read")],
            "401 layer manhole is not public; log in to read it",
        );
    }

    #[test]
    fn effective_reports_the_basis() {
        let l = LayerAccess { name: "manhole", public: true, citizen_reports: false };
        let cit = who(Role::Citizen, &["排水队"]);
        assert_eq!(
            effective(Some(&cit), &l, &[]),
            Effective { grants: Grants::READ, basis: Basis::Default(Role::Citizen) }
        );
        let rules = [rule("manhole", "group:排水队", "edit")];
        assert_eq!(
            effective(Some(&cit), &l, &rules),
            Effective { grants: Grants::READ_EDIT, basis: Basis::Rules(vec![Subject::Group("排水队".into())]) }
        );
        assert_eq!(effective(None, &l, &rules).basis, Basis::Anonymous);
    }

    #[test]
    fn into_result_maps_to_errors() {
        let l = LayerAccess { name: "manhole", public: false, citizen_reports: false };
        assert!(matches!(decide(None, &l, Read, &[]).into_result(), Err(AuthError::LoginRequired(_))));
        let cit = who(Role::Citizen, &[]);
        let e = decide(Some(&cit), &l, Edit, &[]).into_result().unwrap_err();
        assert_eq!(e.to_string(), "role citizen may not edit layer manhole");
        assert_eq!(e.kind(), crate::ErrorKind::Forbidden);
        assert!(decide(Some(&cit), &LayerAccess { public: true, ..l }, Read, &[]).into_result().is_ok());
    }

    fn grants(input: &str, expected: Result<&str, &str>) {
        let got = input.parse::<Grants>().map(|g| g.to_string()).map_err(|e| e.to_string());
        assert_eq!(got.as_deref().map_err(String::as_str), expected, "{input:?}");
    }

    #[test]
    fn grants_parse_and_print() {
        grants("read", Ok("read"));
        grants("read,edit", Ok("read,edit"));
        grants("edit, read , publish", Ok("read,edit,publish"));
        grants("read，create_only", Ok("read,create"));
        grants("create edit", Ok("edit"));
        grants("none", Ok("none"));
        grants("READ", Ok("read"));
        grants("", Err("empty permission list (say `none` to grant nothing)"));
        grants(
            "read,write",
            Err("unknown permission `write` in `read,write` (expected read, create, edit, publish or none)"),
        );
    }

    #[test]
    fn subjects_parse_and_print() {
        for (s, shown) in [
            ("role:office", "role office"),
            ("group:排水队", "group 排水队"),
            ("authenticated", "authenticated users"),
            (" Role:Citizen ", "role citizen"),
        ] {
            assert_eq!(s.parse::<Subject>().unwrap().to_string(), shown);
        }
        for bad in ["office", "group:", "role:boss", "team:x"] {
            assert!(bad.parse::<Subject>().is_err(), "{bad}");
        }
    }
}
