//! Supervision figures (考核评价): 立案率, 按期处置率, 按期结案率, 返工率 and the average
//! handling time, for any group of cases (a department, a grid, a period). Pure: the server passes
//! each case's history and the deadline each stage had (computed with the working-time calendar
//! when the stage started), plus a function measuring durations in working time.
//!
//! The definitions follow the evaluation of digital city-management systems (GB/T 30428 family;
//! the exact formulas vary by city, so these are stated here and in ARCHITECTURE.md):
//! - 立案率 = cases registered ÷ cases accepted (有效上报: an accepted report is a valid one);
//! - 按期处置率 = handling stages ended by `handle` on time ÷ handling stages due (ended by
//!   `handle`, or still open past their deadline at `now`);
//! - 按期结案率 = cases closed with no stage after registration overrunning its deadline ÷ cases
//!   due to close (closed, or with a stage after registration open past its deadline at `now`);
//! - 返工率 = cases sent back after being handled (`return` from handled/verified) ÷ cases handled;
//! - average handling time = mean working time from dispatch to `handle`, over handled stages.
//!
//! A rate with nothing due is `None` (shown as "—"), never 100 % or 0 %.

use serde::{Deserialize, Serialize};

use crate::runtime::{Applied, Stamp};

/// The state ids the figures are read from (the standard flow's by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiStates {
    pub accepted: String,
    pub registered: String,
    /// The handling stage (处置): the state a dispatched case is in until `handle`.
    pub handling: String,
    pub handled: String,
    pub verified: String,
    pub closed: String,
    pub handle_action: String,
    pub return_action: String,
}

impl Default for KpiStates {
    fn default() -> Self {
        KpiStates {
            accepted: "accepted".into(),
            registered: "registered".into(),
            handling: "dispatched".into(),
            handled: "handled".into(),
            verified: "verified".into(),
            closed: "closed".into(),
            handle_action: "handle".into(),
            return_action: "return".into(),
        }
    }
}

/// One case as the figures need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The state the case started in and when.
    pub initial_state: String,
    pub opened: Stamp,
    /// The initial stage's deadline.
    pub initial_deadline: Option<Stamp>,
    pub history: Vec<Applied>,
    /// `deadlines[i]`: the deadline of the stage `history[i]` started (after any 延期), `None`
    /// for a stage without a clock.
    pub deadlines: Vec<Option<Stamp>>,
}

/// A ratio with its parts, so a report can show "12 / 15".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    /// `numerator / denominator`, `None` when nothing was due.
    pub value: Option<f64>,
}

impl Rate {
    fn of(numerator: u64, denominator: u64) -> Rate {
        let value = (denominator > 0).then(|| numerator as f64 / denominator as f64);
        Rate { numerator, denominator, value }
    }
}

/// The figures of one group of cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    pub cases: u64,
    /// 立案率
    pub registration_rate: Rate,
    /// 按期处置率
    pub on_time_handling_rate: Rate,
    /// 按期结案率
    pub on_time_closing_rate: Rate,
    /// 返工率
    pub rework_rate: Rate,
    /// Mean working time from dispatch to `handle`, in the unit `working` returns.
    pub average_handling: Option<f64>,
}

/// One stage of a case: the state, when it started and ended, its deadline.
struct Stage<'a> {
    state: &'a str,
    started: Stamp,
    deadline: Option<Stamp>,
    /// The action that ended it and when; `None` while it is the current stage.
    ended: Option<(&'a str, Stamp)>,
}

fn stages(c: &CaseRecord) -> Vec<Stage<'_>> {
    let mut out = vec![Stage { state: &c.initial_state, started: c.opened, deadline: c.initial_deadline, ended: None }];
    for (i, a) in c.history.iter().enumerate() {
        let last = out.len() - 1;
        if a.to == a.from {
            // 督办/延期 keep the stage; a 延期 moves its deadline.
            if let Some(Some(d)) = c.deadlines.get(i) {
                out[last].deadline = Some(*d);
            }
            continue;
        }
        out[last].ended = Some((&a.action, a.at));
        out.push(Stage { state: &a.to, started: a.at, deadline: c.deadlines.get(i).copied().flatten(), ended: None });
    }
    out
}

/// Whether a stage ran past its deadline (ended late, or open and late at `now`).
fn overran(s: &Stage<'_>, now: Stamp) -> bool {
    match (s.deadline, s.ended) {
        (Some(d), Some((_, at))) => at > d,
        (Some(d), None) => now > d,
        (None, _) => false,
    }
}

/// The figures of `cases` as of `now`; `working(a, b)` measures a duration (the server: working
/// minutes on the calendar).
pub fn kpis(cases: &[CaseRecord], states: &KpiStates, now: Stamp, working: &dyn Fn(Stamp, Stamp) -> i64) -> Kpis {
    let (mut accepted, mut registered) = (0, 0);
    let (mut handling_due, mut handled_on_time) = (0, 0);
    let (mut closing_due, mut closed_on_time) = (0, 0);
    let (mut handled_cases, mut reworked) = (0, 0);
    let (mut handling_sum, mut handling_n) = (0i128, 0i64);
    for c in cases {
        let st = stages(c);
        let entered = |s: &str| st.iter().any(|x| x.state == s);
        accepted += u64::from(entered(&states.accepted));
        let was_registered = entered(&states.registered);
        registered += u64::from(was_registered);
        for s in st.iter().filter(|s| s.state == states.handling) {
            match s.ended {
                Some((action, at)) if action == states.handle_action => {
                    handling_due += 1;
                    handled_on_time += u64::from(s.deadline.is_none_or(|d| at <= d));
                    handling_sum += i128::from(working(s.started, at));
                    handling_n += 1;
                }
                None if s.deadline.is_some_and(|d| now > d) => handling_due += 1,
                _ => {}
            }
        }
        let was_handled = entered(&states.handled);
        handled_cases += u64::from(was_handled);
        reworked += u64::from(
            c.history
                .iter()
                .any(|a| a.action == states.return_action && (a.from == states.handled || a.from == states.verified)),
        );
        if was_registered {
            let after: Vec<&Stage<'_>> =
                st.iter().skip_while(|s| s.state != states.registered).filter(|s| s.state != states.closed).collect();
            let late = after.iter().any(|s| overran(s, now));
            let closed = st.last().is_some_and(|s| s.state == states.closed) || entered(&states.closed);
            if closed || late {
                closing_due += 1;
                closed_on_time += u64::from(closed && !late);
            }
        }
    }
    Kpis {
        cases: cases.len() as u64,
        registration_rate: Rate::of(registered, accepted),
        on_time_handling_rate: Rate::of(handled_on_time, handling_due),
        on_time_closing_rate: Rate::of(closed_on_time, closing_due),
        rework_rate: Rate::of(reworked, handled_cases),
        average_handling: (handling_n > 0).then(|| handling_sum as f64 / handling_n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: &str, from: &str, to: &str, at: i64) -> Applied {
        Applied {
            action_id: format!("{action}-{at}"),
            action: action.into(),
            actor: "u".into(),
            at: Stamp(at),
            from: from.into(),
            to: to.into(),
            assignee: None,
            note: None,
            photos: vec![],
            rating: None,
        }
    }

    /// A case through the standard flow; the handling stage (dispatched) has deadline 100.
    fn case(steps: &[(&str, &str, &str, i64)], handling_deadline: i64) -> CaseRecord {
        let history: Vec<Applied> = steps.iter().map(|(a, f, t, at)| step(a, f, t, *at)).collect();
        let deadlines = history.iter().map(|a| (a.to == "dispatched").then_some(Stamp(handling_deadline))).collect();
        CaseRecord { initial_state: "reported".into(), opened: Stamp(0), initial_deadline: None, history, deadlines }
    }

    const FULL: [(&str, &str, &str, i64); 6] = [
        ("accept", "reported", "accepted", 1),
        ("register", "accepted", "registered", 2),
        ("dispatch", "registered", "dispatched", 10),
        ("handle", "dispatched", "handled", 50),
        ("verify", "handled", "verified", 60),
        ("close", "verified", "closed", 70),
    ];

    fn wall(a: Stamp, b: Stamp) -> i64 {
        b.0 - a.0
    }

    #[test]
    fn on_time_late_open_and_rework() {
        let on_time = case(&FULL, 100);
        let late = case(&FULL, 40); // handled at 50, deadline 40
        let open_late = case(&FULL[..3], 100); // dispatched, not handled; now = 200
        let open_on_time = case(&FULL[..3], 1000);
        let mut reworked = FULL[..4].to_vec();
        reworked.extend([
            ("return", "handled", "dispatched", 55),
            ("handle", "dispatched", "handled", 80),
            ("verify", "handled", "verified", 85),
            ("close", "verified", "closed", 90),
        ]);
        let reworked = case(&reworked, 100);
        let dismissed = case(&[("close", "reported", "dismissed", 5)], 100);
        let k = kpis(
            &[on_time, late, open_late, open_on_time, reworked, dismissed],
            &KpiStates::default(),
            Stamp(200),
            &wall,
        );
        assert_eq!(k.cases, 6);
        // Five accepted, five registered.
        assert_eq!((k.registration_rate.numerator, k.registration_rate.denominator), (5, 5));
        // Handling stages due: on_time, late, open_late, reworked×2 (open_on_time is not due yet).
        assert_eq!((k.on_time_handling_rate.numerator, k.on_time_handling_rate.denominator), (3, 5));
        // Closing due: on_time, late, open_late, reworked; on time: on_time, reworked.
        assert_eq!((k.on_time_closing_rate.numerator, k.on_time_closing_rate.denominator), (2, 4));
        // Handled: on_time, late, reworked; reworked once.
        assert_eq!((k.rework_rate.numerator, k.rework_rate.denominator), (1, 3));
        // Handling times: 40, 40, 40 and 25 (10→50 three times, 55→80 once).
        assert_eq!(k.average_handling, Some((40.0 * 3.0 + 25.0) / 4.0));
    }

    #[test]
    fn extend_moves_the_deadline_and_nothing_due_is_no_rate() {
        let mut steps = FULL[..3].to_vec();
        steps.push(("extend", "dispatched", "dispatched", 30));
        steps.extend_from_slice(&FULL[3..]);
        let mut c = case(&steps, 40);
        c.deadlines[3] = Some(Stamp(100)); // the 延期 moved the deadline from 40 to 100
        let k = kpis(&[c], &KpiStates::default(), Stamp(200), &wall);
        assert_eq!(k.on_time_handling_rate.value, Some(1.0));
        let empty = kpis(&[], &KpiStates::default(), Stamp(0), &wall);
        assert_eq!((empty.registration_rate.value, empty.average_handling), (None, None));
    }
}
