use super::*;

fn one_text(url: &str, sql: &str) -> String {
    let mut client = match postgres::Client::connect(url, postgres::NoTls) {
        Ok(client) => client,
        Err(e) => panic!("connect {url}: {e}"),
    };
    match client.query_one(sql, &[]) {
        Ok(row) => row.get(0),
        Err(e) => panic!("{sql} on {url}: {e}"),
    }
}

#[test]
fn shared_cluster_gives_fresh_postgis_databases() {
    let cluster = Cluster::shared();
    assert!(std::ptr::eq(cluster, Cluster::shared()), "one cluster per process");
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    let a = cluster.fresh_db();
    let b = cluster.fresh_db();
    assert_ne!(a, b);
    for url in [&a, &b] {
        assert!(url.starts_with(&format!("postgres://postgres@127.0.0.1:{}/", cluster.port())));
        let version = one_text(url, "SELECT postgis_full_version()");
        assert!(version.starts_with("POSTGIS=\"3."), "{version}");
    }
    // The databases are separate: a table made in one is absent from the other.
    let mut client = postgres::Client::connect(&a, postgres::NoTls).expect("connect a");
    client.batch_execute("CREATE TABLE only_in_a (g geometry(Point, 4490))").expect("create");
    let found = one_text(&b, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'only_in_a'");
    assert_eq!(found, "0");
    // Chinese text round-trips and sorts by code point (C collation, UTF-8).
    let sorted = one_text(&a, "SELECT string_agg(x, ',' ORDER BY x) FROM (VALUES ('武汉'), ('Z'), ('北京')) v(x)");
    assert_eq!(sorted, "Z,北京,武汉");
    assert_eq!(one_text(&a, "SELECT lower('ÄB武')"), "äb武");
    assert_eq!(one_text(&a, "SHOW fsync"), "off");
    assert!(!cluster.durable());
}

#[test]
fn own_cluster_is_durable_and_gone_after_drop() {
    let cluster = Cluster::start(true).expect("start a durable cluster");
    assert!(cluster.durable());
    assert_eq!(one_text(&cluster.url("postgres"), "SHOW fsync"), "on");
    let url = cluster.fresh_db();
    assert!(one_text(&url, "SELECT postgis_full_version()").contains("POSTGIS"));
    let root = cluster.root_dir().to_owned();
    let pid = postmaster_pid(cluster.data_dir());
    drop(cluster);
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!alive(pid), "postmaster {pid} still running after drop");
}

fn postmaster_pid(data: &Path) -> u32 {
    let text = fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
    text.lines().next().and_then(|l| l.trim().parse().ok()).expect("pid in postmaster.pid")
}

/// Running and not a zombie waiting for its (new) parent to reap it.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

const CHILD_ENV: &str = "SHIKONG_PGTEST_KILLED_CHILD";

/// The test process is SIGKILLed while its shared cluster runs: the server stops and its folder
/// is removed anyway (the watchdog sees the pipe close).
#[test]
fn server_stops_when_test_process_is_killed() {
    if let Some(report) = std::env::var_os(CHILD_ENV) {
        let cluster = Cluster::shared();
        let line = format!("{} {}", postmaster_pid(cluster.data_dir()), cluster.root_dir().display());
        fs::write(PathBuf::from(report), line).expect("write the report");
        thread::sleep(Duration::from_secs(60));
        return;
    }
    let report = tempfile::NamedTempFile::new().expect("report file");
    let exe = std::env::current_exe().expect("current test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "tests::server_stops_when_test_process_is_killed", "--test-threads=1"])
        .env(CHILD_ENV, report.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the test binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = None;
    while ready.is_none() && Instant::now() < deadline {
        let text = fs::read_to_string(report.path()).unwrap_or_default();
        if let Some((pid, root)) = text.split_once(' ') {
            ready = Some((pid.parse::<u32>().expect("pid"), PathBuf::from(root)));
        } else {
            thread::sleep(Duration::from_millis(50));
        }
    }
    let (pid, root) = ready.expect("the child test process started a cluster");
    assert!(alive(pid));
    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap the child");
    let deadline = Instant::now() + Duration::from_secs(20);
    while (alive(pid) || root.exists()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(pid), "postmaster {pid} outlived its killed test process");
    assert!(!root.exists(), "{} left behind", root.display());
}

#[test]
fn bin_dir_has_the_server_tools() {
    let bin = Cluster::bin_dir();
    for tool in ["initdb", "pg_ctl", "postgres", "pg_basebackup"] {
        assert!(bin.join(tool).is_file(), "{} missing", bin.join(tool).display());
    }
}

/// A synchronous standby has every acknowledged commit, serves reads, refuses writes, and takes
/// over when promoted after its primary stopped at once.
#[test]
fn a_synchronous_standby_follows_and_takes_over() {
    let primary = Cluster::start(false).expect("start a primary");
    let url = primary.fresh_db();
    let db = url.rsplit('/').next().expect("database name").to_owned();
    let standby = primary.standby(Replication::Sync).expect("start a standby");
    assert_ne!(standby.port(), primary.port());
    let mut w = postgres::Client::connect(&url, postgres::NoTls).expect("connect to the primary");
    w.batch_execute("CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 100)").expect("write");
    assert_eq!(one_text(&url, "SHOW synchronous_commit"), "on", "the superuser's sessions wait for the standby");
    let on_standby = standby.url(&db);
    assert_eq!(one_text(&on_standby, "SELECT pg_is_in_recovery()::text"), "true");
    // Synchronous `on` waits for the standby's WAL, not its replay: the rows show shortly after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while one_text(&on_standby, "SELECT (SELECT count(*) FROM pg_tables WHERE tablename = 't')::text") != "1"
        || one_text(&on_standby, "SELECT count(*)::text FROM t") != "100"
    {
        assert!(Instant::now() < deadline, "the standby did not replay the rows");
        thread::sleep(Duration::from_millis(10));
    }
    let mut r = postgres::Client::connect(&on_standby, postgres::NoTls).expect("connect to the standby");
    let refused = r.batch_execute("INSERT INTO t VALUES (0)").expect_err("a standby refuses writes");
    assert_eq!(refused.code(), Some(&postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION), "{refused:?}");
    drop(r);
    w.batch_execute("INSERT INTO t VALUES (101)").expect("an acknowledged commit");
    drop(w);
    primary.stop_immediate().expect("stop the primary");
    standby.promote().expect("promote the standby");
    assert_eq!(one_text(&on_standby, "SELECT pg_is_in_recovery()::text"), "false");
    assert_eq!(one_text(&on_standby, "SELECT count(*)::text FROM t"), "101", "nothing acknowledged was lost");
    let mut w = postgres::Client::connect(&on_standby, postgres::NoTls).expect("connect to the new primary");
    w.batch_execute("INSERT INTO t VALUES (102)").expect("the promoted standby takes writes");
    let root = standby.root_dir().to_owned();
    drop(standby);
    assert!(!root.exists(), "{} left behind", root.display());
}
