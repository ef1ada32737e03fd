//! Keeps the machine's cores awake while a `paper` or `live` session runs
//! (`[feeds] keep_cores_awake`): one thread per core that spins at Linux's lowest scheduling
//! class, `SCHED_IDLE`.
//!
//! Why: between two market messages the session's thread sleeps, and an idle core halts. On a
//! virtual machine the host then runs other work on it, and the session wakes on a core whose
//! caches and clock have gone cold: the first checkpoint row of a message costs ~40 µs to score
//! instead of ~10 (`examples/paper_latency.rs`). A `SCHED_IDLE` thread only ever runs when nothing
//! else wants the core, and the kernel takes the core back from it as soon as the session wakes,
//! so it delays no work; its loop (`pause`, a flag read) touches no memory that the session's
//! could be evicted for. The price is the cores' idle time, burnt: the same trade as the kernel's
//! `idle=poll`, in user space and only while the session runs.

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// The spinning threads; dropping it stops and joins them.
pub struct IdleSpin {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Kernel thread ids of the spinners.
    tids: Vec<i32>,
}

impl IdleSpin {
    /// Starts `n` spinning threads (normally one per core), each already in `SCHED_IDLE` when
    /// this returns. Errors when the scheduling class cannot be set (then none is left running)
    /// or on a system other than Linux.
    pub fn start(n: usize) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut spin = Self {
            stop: stop.clone(),
            threads: Vec::with_capacity(n),
            tids: Vec::with_capacity(n),
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<i32, String>>();
        for i in 0..n {
            let (stop, ready) = (stop.clone(), ready_tx.clone());
            let t = std::thread::Builder::new()
                .name(format!("smartflow-idle-{i}"))
                .spawn(move || {
                    let set = set_idle_class();
                    let ok = set.is_ok();
                    let _ = ready.send(set);
                    while ok && !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            std::hint::spin_loop();
                        }
                    }
                })?;
            spin.threads.push(t);
        }
        drop(ready_tx);
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(tid)) => spin.tids.push(tid),
                Ok(Err(e)) => bail!("feeds.keep_cores_awake: {e}"),
                Err(_) => bail!("feeds.keep_cores_awake: a spinning thread ended at start"),
            }
        }
        Ok(spin)
    }

    /// Threads spinning.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for IdleSpin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Puts the calling thread in `SCHED_IDLE` (no privilege needed to lower one's own class);
/// its kernel thread id.
#[cfg(target_os = "linux")]
fn set_idle_class() -> Result<i32, String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        // SAFETY: no arguments; always succeeds.
        Ok(unsafe { libc::gettid() })
    } else {
        Err(format!(
            "cannot put a spinning thread in SCHED_IDLE: {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(not(target_os = "linux"))]
fn set_idle_class() -> Result<i32, String> {
    Err("needs Linux (SCHED_IDLE); leave it false here".into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread's scheduling class (`libc::SCHED_*`); 0 is the calling thread.
    fn class_of(tid: i32) -> i32 {
        // SAFETY: no pointer; a tid of this process or 0.
        unsafe { libc::sched_getscheduler(tid) }
    }

    /// Every spinner runs in SCHED_IDLE, the starting thread keeps its class, and dropping the
    /// guard stops and joins them all.
    #[test]
    fn spinners_run_in_sched_idle_and_stop_on_drop() {
        let spin = IdleSpin::start(2).unwrap();
        assert_eq!(spin.threads(), 2);
        for &tid in &spin.tids {
            assert_eq!(class_of(tid), libc::SCHED_IDLE, "spinner {tid}");
        }
        assert_eq!(class_of(0), libc::SCHED_OTHER);
        let (stop, tids) = (spin.stop.clone(), spin.tids.clone());
        drop(spin);
        assert!(stop.load(Ordering::Relaxed));
        // A joined thread leaves /proc a moment after `join` returns (the kernel wakes the
        // joiner before it reaps the thread).
        for tid in tids {
            let task = format!("/proc/self/task/{tid}");
            let t0 = std::time::Instant::now();
            while std::path::Path::new(&task).exists() {
                assert!(
                    t0.elapsed().as_secs() < 5,
                    "spinner {tid} still there after drop"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}
