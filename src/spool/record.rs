//! Recording what a sink's delivery attempts came to, and what a delivery makes owed next, in
//! one transaction made durable before `record` returns (docs/design.md 3).

use super::bodies::Bodies;
use super::{
    actions, bound, bump, encode, ledger, mark_pending, owe, Delivery, Item, Role, Spool,
    SpoolError, State, TxResult,
};
use crate::config::AfterDelivery;
use sled::transaction::TransactionalTree;
use sled::Transactional;

/// How a delivery attempt changes one item for one sink.
#[derive(Debug, Clone)]
pub enum Update {
    Delivered { message_id: String, at: i64 },
    Failed { error: String },
    DeadLetter { error: String },
}

impl Update {
    /// What this attempt makes of a pending delivery: one attempt more, and its outcome.
    fn apply(&self, d: &mut Delivery) {
        d.attempts += 1;
        match self {
            Update::Delivered { message_id, at } => {
                d.state = State::Delivered;
                d.message_id = Some(message_id.clone());
                d.delivered_at = Some(*at);
            }
            Update::Failed { error } => d.last_error = Some(error.clone()),
            Update::DeadLetter { error } => {
                d.state = State::Dead;
                d.last_error = Some(error.clone());
            }
        }
    }
}

/// What delivering an item makes owed next, as the caller's config decides it: the spool
/// records what it is told (see [`Spool::record`]).
#[derive(Debug, Clone, Default)]
pub struct FollowUps {
    /// The sink owed a one-line mirror of the delivery (the bucket's audit sink).
    pub audit: Option<String>,
    /// The action owed on the server once the item is delivered everywhere.
    pub after_delivery: Option<AfterDelivery>,
}

/// One item's delivery result as [`Spool::record`] takes it: `(id, update)`, which owes
/// nothing more, or `(id, update, follow_ups)`.
pub trait Entry {
    fn id(&self) -> u64;
    fn update(&self) -> &Update;
    fn follow_ups(&self) -> &FollowUps;
}

/// The follow-ups of an update that owes nothing more.
static NOTHING: FollowUps = FollowUps {
    audit: None,
    after_delivery: None,
};

impl Entry for (u64, Update) {
    fn id(&self) -> u64 {
        self.0
    }
    fn update(&self) -> &Update {
        &self.1
    }
    fn follow_ups(&self) -> &FollowUps {
        &NOTHING
    }
}

impl Entry for (u64, Update, FollowUps) {
    fn id(&self) -> u64 {
        self.0
    }
    fn update(&self) -> &Update {
        &self.1
    }
    fn follow_ups(&self) -> &FollowUps {
        &self.2
    }
}

impl Spool {
    /// Applies delivery results of `sink` to items, and what each delivery makes owed next
    /// ([`FollowUps`], as the caller decided it), in one transaction; made durable when any
    /// item left `pending` here. Each entry is an `(id, update)`, or an
    /// `(id, update, follow_ups)`:
    /// - an item delivered here for the first time (not itself as an audit mirror) gets a
    ///   one-line mirror owed to `follow_ups.audit`, when that names another sink not listed
    ///   yet;
    /// - an item this update makes `delivered` owes `follow_ups.after_delivery` on the server
    ///   ([`actions`]).
    pub fn record<E: Entry>(&self, sink: &str, updates: &[E]) -> Result<(), SpoolError> {
        let (items, ledger, owed, pending, counts) = self.delivery_trees();
        let trees = (items, ledger, owed, pending, counts, &self.actions);
        let settled = trees.transaction(|view| {
            let mut settled = false;
            for entry in updates {
                let (id, update, then) = (entry.id(), entry.update(), entry.follow_ups());
                settled |= record_one(&self.bodies, view, sink, id, update, then)?;
            }
            Ok(settled)
        })?;
        if settled {
            self.durable()?;
        }
        Ok(())
    }
}

/// The trees [`Spool::record`] changes, as its transaction sees them: `items`, `ledger`,
/// `owed`, `pending`, `counts`, `actions`.
type RecordView = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

/// Applies one `update` of `sink` to the item `id`, inside [`Spool::record`]'s transaction,
/// with what its delivery makes owed (`then`). Returns whether the item left `pending` for
/// `sink`. An item gone, not owed to `sink`, or no longer pending there is left as it is.
fn record_one(
    bodies: &Bodies,
    view: &RecordView,
    sink: &str,
    id: u64,
    update: &Update,
    then: &FollowUps,
) -> TxResult<bool> {
    let (items_t, ledger_t, owed_t, pending_t, counts_t, actions_t) = view;
    let idb = id.to_be_bytes();
    let Some((mut item, cost)) = bodies.item_tx(items_t, ledger_t, id)? else {
        return Ok(false);
    };
    let before = item.state();
    let Some(d) = item.delivery_mut(sink) else {
        return Ok(false);
    };
    if d.state != State::Pending {
        return Ok(false);
    }
    update.apply(d);
    let mirrored = d.role != Some(Role::Audit);
    let settled = d.state != State::Pending;
    if settled {
        owe(owed_t, sink, &item, false)?;
    }
    let added = mirrored
        && matches!(update, Update::Delivered { .. })
        && owe_mirror(owed_t, &mut item, sink, then.audit.as_deref())?;
    let after = item.state();
    if after != before {
        bump(counts_t, &item.bucket, before, -1)?;
        bump(counts_t, &item.bucket, after, 1)?;
        if after != State::Pending {
            mark_pending(pending_t, &item, false)?;
        }
        if let (State::Delivered, Update::Delivered { at, .. }) = (after, update) {
            actions::owe(actions_t, &item, then.after_delivery.clone(), *at)?;
        }
    }
    if added {
        // The record lists a new delivery: rewritten whole, its entries settled.
        let encoded = encode(&item);
        bound::restate(counts_t, cost, encoded.len(), &item)?;
        items_t.insert(&idb, encoded)?;
        ledger::settle(ledger_t, &item)?;
    } else {
        ledger::put_tx(ledger_t, &item, sink)?;
    }
    Ok(settled)
}

/// Makes `item`, just delivered to `sink`, owe a one-line mirror to `audit`, when that names
/// another sink the item does not list yet. Returns whether it did.
fn owe_mirror(
    owed: &TransactionalTree,
    item: &mut Item,
    sink: &str,
    audit: Option<&str>,
) -> TxResult<bool> {
    let Some(audit) = audit.filter(|a| *a != sink) else {
        return Ok(false);
    };
    if item.delivery(audit).is_some() {
        return Ok(false);
    }
    item.deliveries.push(Delivery::owed(audit, Role::Audit));
    owe(owed, audit, item, true)?;
    Ok(true)
}
