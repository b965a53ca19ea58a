//! The file state store's compare-and-set across processes: this test binary runs itself as
//! several child processes that save to one state file at the same time.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use flow_telemetry::state::{FileStateStore, StateStore};
use flow_telemetry::{ErrorKind, RunId};

/// Set in a child process: the state file it saves to.
const CHILD_PATH: &str = "FLOW_TEST_STATE_LOCK_PATH";
/// Successful saves each child makes.
const SAVES: u64 = 40;
const CHILDREN: usize = 4;

/// Load, count one more, save; on a conflict load again. Prints `won N` per revision won and
/// `conflict` per refused save. Returns the revisions won.
async fn save_until_won(path: &Path, saves: u64) -> Vec<u64> {
    let store = FileStateStore::new(path);
    let mut won = Vec::new();
    while (won.len() as u64) < saves {
        let mut s = store.load().await.unwrap().unwrap_or_default();
        let count = s.poller.last_seen.map_or(0, |r| r.0);
        s.poller.last_seen = Some(RunId(count + 1));
        match store.save(&s).await {
            Ok(rev) => {
                println!("won {rev}");
                won.push(rev);
            }
            Err(e) if matches!(e.kind(), ErrorKind::StateConflict { .. }) => {
                println!("conflict");
            }
            Err(e) => panic!("{e}"),
        }
    }
    won
}

/// In a child (`FLOW_TEST_STATE_LOCK_PATH` set): one of the racing processes. Run alone: one
/// saver wins every revision in order.
#[tokio::test]
async fn child_saves_its_share() {
    if let Some(path) = std::env::var_os(CHILD_PATH) {
        save_until_won(Path::new(&path), SAVES).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let won = save_until_won(&dir.path().join("state.json"), 5).await;
    assert_eq!(won, [1, 2, 3, 4, 5]);
}

#[test]
fn processes_racing_on_one_state_file_win_each_revision_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "state_lock::child_saves_its_share",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_PATH, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mine: Vec<u64> = text
            .lines()
            // The harness prints `test … ... ` before the first line.
            .filter_map(|l| l.rsplit_once("won ").map(|(_, n)| n))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(mine.len() as u64, SAVES, "{text}");
        conflicts += text.lines().filter(|l| l.ends_with("conflict")).count();
        won.extend(mine);
    }
    let total = SAVES * CHILDREN as u64;
    let distinct: BTreeSet<u64> = won.iter().copied().collect();
    assert_eq!(distinct.len(), won.len(), "a revision was won twice");
    assert_eq!(distinct, (1..=total).collect(), "every revision won once");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = rt
        .block_on(FileStateStore::new(&path).load())
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.revision, stored.poller.last_seen),
        (total, Some(RunId(total))),
        "no save was lost ({conflicts} conflicts along the way)"
    );
}
