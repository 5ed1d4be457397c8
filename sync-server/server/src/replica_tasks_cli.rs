//! `shikong replica tasks FILE` and `shikong replica task FILE CASE_ID --action A [--note T]
//! [--photo F]`: offline field tasks from the command line (scripted devices, tests). The task
//! list is what the last sync brought; an action is validated locally by the flow's rules and
//! queued in the replica, then sent by the next `shikong replica sync`, which prints what the
//! server made of it. Adapters over `shikong-replica`; the rules are `shikong-workflow`'s.

use std::path::Path;

use anyhow::{Context, bail};
use shikong_replica::{Evidence, Replica, TaskActionStatus};

use crate::cli::ReplicaCommand;

fn mime_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        _ => "application/octet-stream",
    }
}

pub(crate) fn run(c: ReplicaCommand) -> anyhow::Result<()> {
    match c {
        ReplicaCommand::Tasks { file } => list(&file),
        ReplicaCommand::Task { file, case_id, action, note, photos } => {
            if !["handle", "verify"].contains(&action.as_str()) {
                bail!("--action `{action}`: a device records `handle` or `verify`");
            }
            let mut r = Replica::open(&file).with_context(|| file.display().to_string())?;
            let now = jiff::Timestamp::now();
            let device = r.info().device.clone().or_else(|| std::env::var("SHIKONG_DEVICE").ok());
            let mut shas = Vec::new();
            for p in &photos {
                let bytes = std::fs::read(p).with_context(|| format!("--photo {}", p.display()))?;
                let evidence =
                    Evidence { capture_time: now, lon: None, lat: None, heading: None, device: device.clone() };
                shas.push(r.add_attachment(&bytes, mime_of(p), &evidence).with_context(|| p.display().to_string())?);
            }
            let q = r.record_task_action(&case_id, &action, note.as_deref(), &shas, now)?;
            println!(
                "recorded {} on case {} (action id {}, {} photo(s)); it is sent at the next `shikong replica sync`",
                q.action,
                q.case_no.as_deref().unwrap_or(&q.case_id),
                q.action_id,
                q.photos.len()
            );
            Ok(())
        }
        _ => bail!("not a task command"),
    }
}

fn list(file: &Path) -> anyhow::Result<()> {
    let r = Replica::open(file).with_context(|| file.display().to_string())?;
    let tasks = r.tasks()?;
    if tasks.is_empty() {
        println!("no open tasks");
    }
    for t in &tasks {
        let class = t.class.as_deref().unwrap_or("-");
        let deadline = t.stage_deadline.as_deref().unwrap_or("-");
        let overdue = if t.overdue { " 超期" } else { "" };
        println!(
            "{}\t{}\tclass {class}\tdeadline {deadline}{overdue}\tstate {} ({})\t{}",
            t.case_id,
            t.case_no,
            t.state,
            t.state_label,
            t.asset.as_deref().unwrap_or("")
        );
    }
    for a in r.task_actions()? {
        if a.status == TaskActionStatus::Applied {
            continue;
        }
        let case = a.case_no.as_deref().unwrap_or(&a.case_id);
        match a.status {
            TaskActionStatus::Pending => match &a.reason {
                Some(why) => println!("queued\t{case}\t{}\t{}\tnot yet accepted: {why}", a.action, a.action_id),
                None => println!("queued\t{case}\t{}\t{}\tsent at the next sync", a.action, a.action_id),
            },
            TaskActionStatus::Rejected => println!(
                "rejected\t{case}\t{}\t{}\t{}: {} (case state {})",
                a.action,
                a.action_id,
                a.kind.as_deref().unwrap_or("-"),
                a.reason.as_deref().unwrap_or("-"),
                a.state.as_deref().unwrap_or("-")
            ),
            TaskActionStatus::Applied => {}
        }
    }
    Ok(())
}

/// The task lines of `shikong replica sync`.
pub(crate) fn print_sync(t: &shikong_sync_client::TaskSync) {
    println!(
        "tasks: {} open; offline actions: {} applied, {} rejected, {} waiting",
        t.tasks,
        t.applied,
        t.rejected.len(),
        t.refused
    );
    for (case, action, reason) in &t.rejected {
        println!("rejected task action {action} on case {case}: {reason}");
    }
}
