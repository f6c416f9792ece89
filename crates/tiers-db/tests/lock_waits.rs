//! Row-lock waits through a live `tiers db`: short writes that meet a held
//! lock wait without holding up other sessions, see the committed value,
//! and still meet deadlock detection and `lock_timeout`.

#[path = "support/server.rs"]
mod server;

use server::{connect, start, start_serving};
use tokio_postgres::error::SqlState;

/// Short writes run on the server's async workers and await their commit's
/// fsync there. One that meets a row lock held by an open transaction must
/// wait for it elsewhere, without holding up other sessions, and then
/// write on top of the committed value; the same inside a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_writes_wait_for_row_locks_without_stalling_other_sessions() {
    let (_dir, addr, _stop) = start().await;
    let holder = connect(addr).await;
    holder
        .batch_execute(
            "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
             INSERT INTO acct VALUES (1, 100), (2, 100);
             BEGIN;
             UPDATE acct SET bal = bal + 10 WHERE id = 1;",
        )
        .await
        .unwrap();
    // Several sessions queue on the locked row: autocommit (simple and
    // extended protocol) and inside a transaction. More of them than
    // the server has async workers.
    let mut waiters = Vec::new();
    for i in 0..4 {
        let c = connect(addr).await;
        waiters.push(tokio::spawn(async move {
            match i {
                0 => c
                    .batch_execute("UPDATE acct SET bal = bal + 1 WHERE id = 1")
                    .await
                    .unwrap(),
                1 => {
                    let n = c
                        .execute("UPDATE acct SET bal = bal + $1 WHERE id = 1", &[&1i32])
                        .await
                        .unwrap();
                    assert_eq!(n, 1);
                }
                _ => c
                    .batch_execute(
                        "BEGIN; UPDATE acct SET bal = bal + 1 WHERE id = 1; \
                         INSERT INTO acct VALUES (10 + 0, 0) ON CONFLICT DO NOTHING; COMMIT",
                    )
                    .await
                    .unwrap(),
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "writers waited for the row lock"
    );
    // Meanwhile other sessions read and write other rows at once.
    let other = connect(addr).await;
    for n in 0..20 {
        let started = std::time::Instant::now();
        other
            .execute("UPDATE acct SET bal = bal - 1 WHERE id = 2", &[])
            .await
            .unwrap();
        other
            .execute("INSERT INTO acct VALUES ($1, 0)", &[&(100 + n)])
            .await
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    let row = other
        .query_one("SELECT bal FROM acct WHERE id = 2", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 80);
    holder.batch_execute("COMMIT").await.unwrap();
    for w in waiters {
        tokio::time::timeout(std::time::Duration::from_secs(10), w)
            .await
            .expect("waiters finish once the lock is free")
            .unwrap();
    }
    let row = other
        .query_one("SELECT bal FROM acct WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 114, "no update was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brief_lock_waits_end_on_release_and_deadlocks_are_still_found() {
    let (_dir, addr, admin) = start_serving().await;
    let first = connect(addr).await;
    let second = connect(addr).await;
    first
        .batch_execute(
            "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
             INSERT INTO acct VALUES (1, 100), (2, 100);",
        )
        .await
        .unwrap();

    // A lock held for a moment: the waiter goes on as soon as it is free.
    first
        .batch_execute("BEGIN; UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    let waits_before = admin.status()["lock_waits"].as_u64().unwrap();
    let waiter = tokio::spawn(async move {
        second
            .execute("UPDATE acct SET bal = bal * 2 WHERE id = 1", &[])
            .await
            .unwrap();
        second
    });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    first.batch_execute("COMMIT").await.unwrap();
    let second = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("the waiter finishes once the lock is free")
        .unwrap();
    let bal: i32 = first
        .query_one("SELECT bal FROM acct WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bal, 202, "the waiter saw the committed update");
    assert!(admin.status()["lock_waits"].as_u64().unwrap() > waits_before);

    // Two transactions locking the same rows in opposite orders: one of
    // them is told of the deadlock, the other then finishes.
    first
        .batch_execute("BEGIN; UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    second
        .batch_execute("BEGIN; UPDATE acct SET bal = bal + 1 WHERE id = 2")
        .await
        .unwrap();
    let crossing = tokio::spawn(async move {
        let r = first
            .batch_execute("UPDATE acct SET bal = bal + 1 WHERE id = 2")
            .await;
        (first, r)
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r2 = second
        .batch_execute("UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await;
    let deadlocked_second = r2
        .as_ref()
        .is_err_and(|e| e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED));
    if deadlocked_second {
        second.batch_execute("ROLLBACK").await.unwrap();
    }
    let (first, r1) = tokio::time::timeout(std::time::Duration::from_secs(10), crossing)
        .await
        .expect("the deadlock is resolved")
        .unwrap();
    let deadlocked_first = r1
        .as_ref()
        .is_err_and(|e| e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED));
    assert!(
        deadlocked_first != deadlocked_second,
        "exactly one deadlock error: {r1:?} / {r2:?}"
    );
    if deadlocked_first {
        first.batch_execute("ROLLBACK").await.unwrap();
        second.batch_execute("COMMIT").await.unwrap();
    } else {
        first.batch_execute("COMMIT").await.unwrap();
    }
    let total: i64 = first
        .query_one("SELECT sum(bal) FROM acct", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        total,
        202 + 100 + 2,
        "the surviving transaction's two updates"
    );

    // A session with a lock_timeout waits no longer than that for a row.
    let third = connect(addr).await;
    first
        .batch_execute("BEGIN; UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    third
        .batch_execute("SET lock_timeout = '30ms'")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = third
        .batch_execute("UPDATE acct SET bal = 0 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{e}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(30));
    first.batch_execute("ROLLBACK").await.unwrap();
}
