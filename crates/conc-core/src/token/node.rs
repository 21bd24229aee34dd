//! The cancellation tree's nodes and the protocol that cancels them.
//!
//! **Invariant:** a node's `cause` is set once, under its lock, and
//! `cancelled` is stored `true` in the same critical section; after that the
//! node's registry is empty forever (cancel takes it, and every registration
//! checks `cause` under the lock first). So a registration either lands
//! before the cancel and is notified by it, or sees the cause and acts at
//! once: no lost wake-ups, no callback run twice, no child missed.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Instant;

use slab::Slab;

use crate::Cause;
use crate::sync::{AtomicBool, Mutex, get_mut, lock};
use crate::timer::{TimerKey, Timers};

/// What a node notifies when it is cancelled.
pub(super) enum Registration {
    /// A child token: cancelled with the same cause.
    Child(Weak<Node>),
    /// A task or thread waiting in `cancelled()` or `wait_blocking()`.
    Waker(Waker),
    /// An `on_cancel` callback.
    Callback(Box<dyn FnOnce() + Send>),
}

pub(super) struct State {
    pub(super) cause: Option<Cause>,
    pub(super) registry: Slab<Registration>,
    /// The deadline timer this node set, if it still has one pending.
    timer: Option<TimerKey>,
}

/// A slot index in a parent's registry that is not assigned yet.
const NO_SLOT: usize = usize::MAX;

/// A child's link to one parent: the parent is kept alive by its children,
/// like Go's contexts, and the slot is where the child unregisters on drop.
pub(super) struct ParentLink {
    node: Arc<Node>,
    /// Written once, right after registering and before the child is
    /// shared; read in `Drop`, which the `Arc` orders after the write.
    slot: AtomicUsize,
}

/// A node's parents: none for a root, one for `child()`, several for `any_of`.
pub(super) enum Parents {
    None,
    One(ParentLink),
    Many(Vec<ParentLink>),
}

impl Parents {
    fn as_slice(&self) -> &[ParentLink] {
        match self {
            Parents::None => &[],
            Parents::One(link) => std::slice::from_ref(link),
            Parents::Many(links) => links,
        }
    }

    fn for_each(self, f: impl FnMut(ParentLink)) {
        match self {
            Parents::None => {}
            Parents::One(link) => std::iter::once(link).for_each(f),
            Parents::Many(links) => links.into_iter().for_each(f),
        }
    }
}

pub(crate) struct Node {
    /// The hot flag: `is_cancelled` is one acquire load of it.
    pub(super) cancelled: AtomicBool,
    pub(super) state: Mutex<State>,
    parents: Parents,
    /// The earliest deadline of this node and its ancestors.
    pub(super) deadline: Option<Instant>,
    pub(super) timers: Timers,
    /// The one `CancellationToken` bridged from this node; every conversion
    /// hands out a child of it, so converting often registers only once.
    #[cfg(feature = "tokio-util")]
    pub(super) bridge: std::sync::OnceLock<tokio_util::sync::CancellationToken>,
}

impl Node {
    fn new(parents: Parents, deadline: Option<Instant>, timers: Timers) -> Arc<Node> {
        Arc::new(Node {
            cancelled: AtomicBool::new(false),
            state: Mutex::new(State { cause: None, registry: Slab::new(), timer: None }),
            parents,
            deadline,
            timers,
            #[cfg(feature = "tokio-util")]
            bridge: std::sync::OnceLock::new(),
        })
    }

    /// A root node.
    pub(super) fn root(timers: Timers) -> Arc<Node> {
        Node::new(Parents::None, None, timers)
    }

    /// A node under `parents`, registered with each; cancelled at once (with
    /// the first cancelled parent's cause) if any parent already is.
    pub(super) fn under(parents: &[&Arc<Node>], deadline: Option<Instant>, timers: Timers) -> Arc<Node> {
        let link = |parent: &&Arc<Node>| ParentLink { node: Arc::clone(parent), slot: AtomicUsize::new(NO_SLOT) };
        let parents = match parents {
            [] => Parents::None,
            [parent] => Parents::One(link(parent)),
            many => Parents::Many(many.iter().map(link).collect()),
        };
        let node = Node::new(parents, deadline, timers);
        for link in node.parents.as_slice() {
            let mut parent = lock(&link.node.state);
            if let Some(cause) = parent.cause.clone() {
                drop(parent);
                // Nobody else can see the new node yet: it has no
                // registrations to notify.
                cancel_node(&node, cause);
                break;
            }
            let slot = parent.registry.insert(Registration::Child(Arc::downgrade(&node)));
            link.slot.store(slot, Ordering::Relaxed);
        }
        node
    }

    /// Arms the node's own deadline timer (the caller checked that it is
    /// earlier than any inherited one and still in the future).
    pub(super) fn arm_deadline(self: &Arc<Self>, at: Instant) {
        let key = self.timers.insert(at, crate::timer::Entry::Cancel(Arc::downgrade(self)));
        let mut state = lock(&self.state);
        if state.cause.is_none() {
            state.timer = Some(key);
        } else {
            // Cancelled meanwhile (perhaps by this very timer): the timer is
            // fired or no longer needed.
            drop(state);
            self.timers.remove(key);
        }
    }

    /// Whether no one but the holder of `node`'s one `Arc` can observe
    /// it: never cancelled, nothing registered on it (no child, waiter or
    /// callback), no timer and no tokio bridge. Such a node is
    /// indistinguishable from a new one with the same parents and clock.
    pub(super) fn is_pristine(node: &Arc<Node>) -> bool {
        // Other `Token`s would be strong references. The weak ones left are
        // the parents' registry entries, upgraded only by a parent's cancel,
        // which cancels this node just as it would a new child, and a
        // deadline timer's entry, ruled out below.
        if Arc::strong_count(node) != 1 {
            return false;
        }
        // Pairs with the release decrement of the last other `Token`
        // dropped: what it did to the node happened before this check.
        fence(Ordering::Acquire);
        #[cfg(feature = "tokio-util")]
        if node.bridge.get().is_some() {
            return false;
        }
        let state = lock(&node.state);
        state.cause.is_none() && state.registry.is_empty() && state.timer.is_none()
    }

    pub(super) fn cause(&self) -> Option<Cause> {
        if !self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.state).cause.clone()
    }

    /// Marks this node cancelled unless it already is, and removes its
    /// deadline timer; returns its registrations, to be notified with no
    /// lock held.
    fn mark_cancelled(&self, cause: &Cause) -> Option<Slab<Registration>> {
        let mut state = lock(&self.state);
        if state.cause.is_some() {
            return None;
        }
        state.cause = Some(cause.clone());
        self.cancelled.store(true, Ordering::Release);
        let registry = std::mem::take(&mut state.registry);
        let timer = state.timer.take();
        drop(state);
        if let Some(key) = timer {
            self.timers.remove(key);
        }
        Some(registry)
    }

    /// Removes the registration in `slot`, unless the node was cancelled
    /// (then its registry was taken and the slot no longer exists). Returns
    /// the registration so the caller drops it with no lock held.
    pub(super) fn unregister(&self, slot: usize) -> Option<Registration> {
        let mut state = lock(&self.state);
        if state.cause.is_some() {
            return None;
        }
        state.registry.try_remove(slot)
    }
}

/// Cancels `node` and all its descendants with `cause`, unless it is
/// cancelled already. Returns whether this call cancelled it.
///
/// Two phases: first every node of the subtree is marked (flag, cause,
/// timer removed, registry taken), which runs no user code; then waiters are
/// woken and callbacks run, so every callback sees the whole subtree
/// cancelled. Iterative, so a chain of any depth cancels without deep
/// recursion. If a callback (or a waker) panics, everything else still runs;
/// the first panic is then resumed.
pub(crate) fn cancel_node(node: &Node, cause: Cause) -> bool {
    let Some(registry) = node.mark_cancelled(&cause) else {
        return false;
    };
    let mut notifications = Vec::new();
    let mut children = Vec::new();
    sort(registry, &mut notifications, &mut children);
    while let Some(child) = children.pop() {
        if let Some(registry) = child.mark_cancelled(&cause) {
            sort(registry, &mut notifications, &mut children);
        }
    }
    let mut panic = None;
    for notification in notifications {
        let outcome = match notification {
            Registration::Waker(waker) => catch_unwind(AssertUnwindSafe(|| waker.wake())),
            Registration::Callback(callback) => catch_unwind(AssertUnwindSafe(callback)),
            Registration::Child(_) => Ok(()),
        };
        if let Err(payload) = outcome {
            panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
    true
}

/// Splits a taken registry into children to mark next and what to notify
/// once the whole subtree is marked.
fn sort(registry: Slab<Registration>, notifications: &mut Vec<Registration>, children: &mut Vec<Arc<Node>>) {
    for (_, registration) in registry {
        match registration {
            Registration::Child(child) => children.extend(child.upgrade()),
            other => notifications.push(other),
        }
    }
}

impl Drop for Node {
    /// Unregisters from the parents, then drops every ancestor this node
    /// was the last holder of, iteratively: dropping the leaf of a chain
    /// 100,000 deep uses no more stack than dropping one node.
    fn drop(&mut self) {
        if let Some(key) = get_mut(&mut self.state).timer.take() {
            self.timers.remove(key);
        }
        let mut next = std::mem::replace(&mut self.parents, Parents::None);
        // Allocates only when a drop cascades to an ancestor.
        let mut pending = Vec::new();
        loop {
            next.for_each(|link| {
                drop(link.node.unregister(link.slot.load(Ordering::Relaxed)));
                if let Some(mut parent) = Arc::into_inner(link.node) {
                    pending.push(std::mem::replace(&mut parent.parents, Parents::None));
                    // `parent` drops here with no parents left: no recursion.
                }
            });
            match pending.pop() {
                Some(parents) => next = parents,
                None => break,
            }
        }
    }
}
