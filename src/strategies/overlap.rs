//! Work that one thread produces in order and others can finish meanwhile: the ensemble's
//! checkpoint rows come out of the per-instrument chunk features one after the other (sequential
//! state), but each row's score depends on that row alone.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// Blocks handed over, and whether the producer is done.
struct Queue<T> {
    blocks: VecDeque<(usize, Vec<T>)>,
    done: bool,
}

/// Items with their results, in emission order, kept in the blocks they were mapped in: an item
/// (a checkpoint row with its snapshot, ~700 bytes) is not moved again once emitted.
pub struct Mapped<T, R> {
    blocks: Vec<(Vec<T>, Vec<R>)>,
}

impl<T, R> Mapped<T, R> {
    /// Every item with its result, in emission order.
    pub fn iter(&self) -> impl Iterator<Item = (&T, &R)> {
        self.blocks.iter().flat_map(|(t, r)| t.iter().zip(r))
    }
    /// [`Self::iter`], by value.
    pub fn into_pairs(self) -> impl Iterator<Item = (T, R)> {
        self.blocks
            .into_iter()
            .flat_map(|(t, r)| t.into_iter().zip(r))
    }
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|(t, _)| t.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `produce` on the calling thread; the items it `emit`s are passed, in blocks of `block`,
/// to `threads − 1` helper threads that apply `map` while the caller keeps producing; then the
/// caller maps what is left too. Returns every item with its result, in emission order, whatever
/// the number of threads (`threads` ≤ 1: everything on the caller, no thread started).
///
/// A panic in `produce` or `map`, on any thread, reaches the caller once the helpers stopped.
pub fn produce_map<T, R, P, M>(threads: usize, block: usize, produce: P, map: M) -> Mapped<T, R>
where
    T: Send,
    R: Send,
    P: FnOnce(&mut dyn FnMut(T)),
    M: Fn(&T) -> R + Sync,
{
    let block = block.max(1);
    if threads <= 1 {
        let (mut items, mut results) = (Vec::new(), Vec::new());
        produce(&mut |t| {
            results.push(map(&t));
            items.push(t);
        });
        return Mapped {
            blocks: vec![(items, results)],
        };
    }
    let queue = Mutex::new(Queue {
        blocks: VecDeque::new(),
        done: false,
    });
    let ready = Condvar::new();
    let take = || -> Option<(usize, Vec<T>)> {
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(b) = q.blocks.pop_front() {
                return Some(b);
            }
            if q.done {
                return None;
            }
            q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    };
    let work = || {
        let mut done = Vec::new();
        while let Some((k, items)) = take() {
            let results: Vec<R> = items.iter().map(&map).collect();
            done.push((k, (items, results)));
        }
        done
    };
    let finish = || {
        queue.lock().unwrap_or_else(|p| p.into_inner()).done = true;
        ready.notify_all();
    };
    let mut parts = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        // Tells the helpers to stop also when `produce` panics, so the scope can join them.
        struct OnDrop<F: Fn()>(F);
        impl<F: Fn()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                (self.0)();
            }
        }
        let guard = OnDrop(finish);
        let mut pending = Vec::with_capacity(block);
        let mut next = 0;
        let mut hand_over = |items: Vec<T>| {
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            q.blocks.push_back((next, items));
            next += 1;
            drop(q);
            ready.notify_one();
        };
        produce(&mut |t| {
            pending.push(t);
            if pending.len() == block {
                hand_over(std::mem::replace(&mut pending, Vec::with_capacity(block)));
            }
        });
        if !pending.is_empty() {
            hand_over(pending);
        }
        drop(guard);
        let mut parts = work();
        for h in helpers {
            parts.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        parts
    });
    parts.sort_unstable_by_key(|(k, _)| *k);
    Mapped {
        blocks: parts.into_iter().map(|(_, b)| b).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_results_in_emission_order_on_any_number_of_threads() {
        let produce = |emit: &mut dyn FnMut(u64)| (0..1000u64).for_each(|i| emit(i * 7 % 1000));
        let map = |x: &u64| x * x + 1;
        let pairs = |m: Mapped<u64, u64>| m.iter().map(|(t, r)| (*t, *r)).collect::<Vec<_>>();
        let one = pairs(produce_map(1, 64, produce, map));
        assert_eq!(one.len(), 1000);
        assert_eq!(one[3], (21, 442));
        for threads in [2, 3, 8] {
            for block in [1, 7, 64, 5000] {
                assert_eq!(pairs(produce_map(threads, block, produce, map)), one);
            }
        }
        assert!(produce_map(4, 16, |_| {}, map).is_empty());
    }

    #[test]
    fn a_panic_in_produce_or_map_reaches_the_caller() {
        for at in [0u64, 300, 999] {
            let r = std::panic::catch_unwind(|| {
                produce_map(
                    3,
                    16,
                    |emit| {
                        for i in 0..1000u64 {
                            assert!(i != at, "produce failed at {i}");
                            emit(i);
                        }
                    },
                    |x| *x,
                )
            });
            assert!(r.is_err(), "panic at {at} not seen");
            let r = std::panic::catch_unwind(|| {
                produce_map(
                    3,
                    16,
                    |emit| (0..1000u64).for_each(emit),
                    |x| {
                        assert!(*x != at, "map failed at {x}");
                        *x
                    },
                )
            });
            assert!(r.is_err(), "panic in map at {at} not seen");
        }
    }
}
