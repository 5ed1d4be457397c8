//! Groups and stored rules: membership, defaults and overrides.

use super::*;

both! {
fn groups_and_members() {
    let f = fx();
    f.add("张三", Role::Inspector);
    f.add("李四", Role::Inspector);
    f.store.create_group(&f.admin, "排水队", None).unwrap();
    assert_eq!(
        err(f.store.create_group(&f.admin, "排水队", None)),
        (ErrorKind::Conflict, "a group named `排水队` already exists".into())
    );
    f.store.add_to_group(&f.admin, "排水队", "李四").unwrap();
    let g = f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    assert_eq!(g.members, ["张三", "李四"], "sorted by name");
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let g = f.store.remove_from_group(&f.admin, "排水队", "李四").unwrap();
    assert_eq!(g.members, ["张三"]);
    assert_eq!(
        err(f.store.add_to_group(&f.admin, "绿化队", "张三")),
        (ErrorKind::NotFound, "no group named `绿化队`".into())
    );
    assert_eq!(err(f.store.add_to_group(&f.admin, "排水队", "nobody")).0, ErrorKind::NotFound);
    let u = f.store.user(&f.admin, "张三").unwrap();
    assert_eq!(u.groups, ["排水队"]);
    assert_eq!(f.store.groups(&f.admin).unwrap().len(), 1);
    assert_eq!(err(f.store.create_group(&f.admin, "", None)).0, ErrorKind::BadRequest);
}}

both! {
fn stored_rules_decide_with_defaults_and_overrides() {
    let f = fx();
    let insp = f.user("张三", Role::Inspector);
    let cit = f.user("王五", Role::Citizen);
    let insp_p = insp.principal().unwrap().clone();
    let manhole = LayerAccess { name: "manhole", public: false, citizen_reports: false };
    let reports = LayerAccess { name: "reports", public: false, citizen_reports: true };
    let decide = |p: Option<&Principal>, l: &LayerAccess<'_>, a: Action| match f.store.authorize(p, l, a).unwrap() {
        Decision::Allow => "allow".to_string(),
        Decision::Deny(d) => d.reason,
    };
    // Defaults.
    assert_eq!(decide(Some(&insp_p), &manhole, Action::Edit), "allow");
    assert_eq!(
        decide(cit.principal(), &manhole, Action::Read),
        "role citizen may not read layer manhole (it is not public)"
    );
    assert_eq!(decide(cit.principal(), &reports, Action::Create), "allow");
    assert_eq!(decide(None, &manhole, Action::Read), "layer manhole is not public; log in to read it");
    // A rule makes manhole read-only for inspectors…
    let ro = Rule { layer: "manhole".into(), subject: Subject::Role(Role::Inspector), grants: Grants::READ };
    f.store.set_rule(&f.admin, &ro).unwrap();
    assert_eq!(
        decide(Some(&insp_p), &manhole, Action::Edit),
        "role inspector may not edit layer manhole (by the permission rules of this layer)"
    );
    // …except for the drainage team.
    f.store.create_group(&f.admin, "排水队", None).unwrap();
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let team = Rule { layer: "manhole".into(), subject: Subject::Group("排水队".into()), grants: Grants::READ_EDIT };
    f.store.set_rule(&f.admin, &team).unwrap();
    let insp_now = f.store.verify(f.login("张三").secret.expose()).unwrap();
    assert_eq!(decide(Some(&insp_now), &manhole, Action::Edit), "allow");
    assert_eq!(f.store.list_rules(&f.admin, Some("manhole")).unwrap(), [team.clone(), ro.clone()]);
    // Replacing a rule keeps one rule per subject.
    let team_ro = Rule { grants: Grants::READ, ..team.clone() };
    f.store.set_rule(&f.admin, &team_ro).unwrap();
    assert_eq!(f.store.rules_for("manhole").unwrap().len(), 2);
    // Deleting the group removes its rules.
    f.store.delete_group(&f.admin, "排水队").unwrap();
    assert_eq!(f.store.rules_for("manhole").unwrap(), std::slice::from_ref(&ro));
    f.store.remove_rule(&f.admin, "manhole", &Subject::Role(Role::Inspector)).unwrap();
    assert_eq!(decide(Some(&insp_p), &manhole, Action::Edit), "allow");
    assert_eq!(
        err(f.store.remove_rule(&f.admin, "manhole", &Subject::Role(Role::Inspector))),
        (ErrorKind::NotFound, "no permission rule for role inspector on layer `manhole`".into())
    );
    // Bad rules.
    let admin_rule = Rule { subject: Subject::Role(Role::Admin), ..ro.clone() };
    assert_eq!(err(f.store.set_rule(&f.admin, &admin_rule)).0, ErrorKind::BadRequest);
    let ghost = Rule { subject: Subject::Group("ghosts".into()), ..ro.clone() };
    assert_eq!(err(f.store.set_rule(&f.admin, &ghost)).0, ErrorKind::NotFound);
    assert_eq!(err(f.store.set_rule(&insp, &ro)).0, ErrorKind::Forbidden);
    let eff = f.store.effective_access(Some(&insp_p), &manhole).unwrap();
    assert_eq!(eff.grants, Grants::READ_EDIT);
}}
