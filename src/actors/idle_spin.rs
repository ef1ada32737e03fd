//! Keeps the machine's cores awake and the model in their caches while a `paper` or `live`
//! session runs (`[feeds] keep_cores_awake`): one thread pinned to each core the process may use,
//! spinning at Linux's lowest scheduling class, `SCHED_IDLE`, and reading the signal source's
//! model every [`WARM_EVERY`] ([`crate::strategies::signal::SignalSource::cache_warmer`]).
//!
//! Why: between two market messages the session's thread sleeps, and an idle core halts. On a
//! virtual machine the host then runs other work on it, and the session wakes on a core whose
//! caches and clock have gone cold: the first checkpoint row of a message costs ~40 µs to score
//! instead of ~10 (`examples/paper_latency.rs`). A `SCHED_IDLE` thread only ever runs when nothing
//! else wants the core, and the kernel takes the core back from it as soon as the session wakes,
//! so it delays no work; its loop (`pause`, a flag read) touches no memory that the session's
//! could be evicted for. Other tenants of the machine still evict the model (~260 KB) from the
//! shared caches within a millisecond, so each spinner also reads it into its core's cache every
//! 200 µs: whichever core the session wakes on, the first row it scores finds the trees there.
//! The price is the cores' idle time, burnt: the same trade as the kernel's `idle=poll`, in user
//! space and only while the session runs.

use crate::strategies::signal::CacheWarmer;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a spinner reads the model into its core's cache.
pub const WARM_EVERY: Duration = Duration::from_micros(200);

/// The spinning threads; dropping it stops and joins them.
pub struct IdleSpin {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Kernel thread ids of the spinners.
    tids: Vec<i32>,
}

impl IdleSpin {
    /// Starts one spinning thread per core this process may run on, each pinned to its core
    /// and already in `SCHED_IDLE` when this returns, calling `warm` (if any) every
    /// [`WARM_EVERY`]. Errors when the scheduling class cannot be set (then none is left
    /// running) or on a system other than Linux.
    pub fn start(warm: Option<CacheWarmer>) -> Result<Self> {
        let cores = allowed_cores();
        let n = cores.len();
        let stop = Arc::new(AtomicBool::new(false));
        let mut spin = Self {
            stop: stop.clone(),
            threads: Vec::with_capacity(n),
            tids: Vec::with_capacity(n),
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<i32, String>>();
        for (i, core) in cores.into_iter().enumerate() {
            let (stop, ready, warm) = (stop.clone(), ready_tx.clone(), warm.clone());
            let t = std::thread::Builder::new()
                .name(format!("smartflow-idle-{i}"))
                .spawn(move || {
                    pin_to(core);
                    let set = set_idle_class();
                    let ok = set.is_ok();
                    let _ = ready.send(set);
                    let mut warmed = Instant::now();
                    while ok && !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            std::hint::spin_loop();
                        }
                        if let Some(w) = &warm {
                            if warmed.elapsed() >= WARM_EVERY {
                                w();
                                warmed = Instant::now();
                            }
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

/// The cores this process may run on (its affinity mask), or `0..available_parallelism` when
/// the mask cannot be read (then [`pin_to`] is left to fail quietly).
fn allowed_cores() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the size passed is its own.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc == 0 {
            let cores: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
                .collect();
            if !cores.is_empty() {
                return cores;
            }
        }
    }
    (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

/// Pins the calling thread to `core`; a failure leaves it unpinned (it still spins, only on
/// whichever core the kernel picks).
fn pin_to(core: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within CPU_SETSIZE.
    unsafe {
        if core < libc::CPU_SETSIZE as usize {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = core;
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
    fn spinners_run_in_sched_idle_warm_and_stop_on_drop() {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = calls.clone();
        let spin = IdleSpin::start(Some(Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })))
        .unwrap();
        assert_eq!(spin.threads(), allowed_cores().len());
        for &tid in &spin.tids {
            assert_eq!(class_of(tid), libc::SCHED_IDLE, "spinner {tid}");
        }
        assert_eq!(class_of(0), libc::SCHED_OTHER);
        // Each spinner calls the warmer every WARM_EVERY while this thread sleeps.
        let t0 = Instant::now();
        while calls.load(Ordering::Relaxed) < 10 {
            assert!(t0.elapsed().as_secs() < 5, "the warmer was not called");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (stop, tids) = (spin.stop.clone(), spin.tids.clone());
        drop(spin);
        assert!(stop.load(Ordering::Relaxed));
        // A joined thread leaves /proc a moment after `join` returns (the kernel wakes the
        // joiner before it reaps the thread).
        for tid in tids {
            let task = format!("/proc/self/task/{tid}");
            let t0 = Instant::now();
            while std::path::Path::new(&task).exists() {
                assert!(
                    t0.elapsed().as_secs() < 5,
                    "spinner {tid} still there after drop"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let after = calls.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::Relaxed), after, "no call after drop");
    }
}
