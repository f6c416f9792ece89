//! Plans kept between executions of a prepared statement (the extended
//! protocol's named statements): a SELECT's query plan, an UPDATE's or an
//! INSERT's [`super::write::UpdatePlan`] / [`super::write::InsertPlan`].
//! A plan is filed under the catalog epoch it was made at
//! ([`super::Database::plan_epoch`]) and made again at any other.

use std::sync::Arc;

use super::write::{InsertPlan, UpdatePlan};
use crate::error::Result;
use crate::query::QueryPlan;

/// A prepared statement's kept plan. It is planned again when any DDL ran
/// since it was made.
#[derive(Default)]
pub struct PlanCache {
    plan: std::sync::Mutex<Option<(u64, CachedPlan)>>,
}

/// What a [`PlanCache`] keeps.
#[derive(Clone)]
pub(super) enum CachedPlan {
    Query(Arc<QueryPlan>),
    Update(Arc<UpdatePlan>),
    Insert(Arc<InsertPlan>),
}

/// A kind of plan a [`PlanCache`] can keep.
pub(super) trait Kept: Sized {
    fn wrap(plan: Arc<Self>) -> CachedPlan;
    fn unwrap(plan: CachedPlan) -> Option<Arc<Self>>;
}

macro_rules! kept {
    ($plan:ty, $variant:ident) => {
        impl Kept for $plan {
            fn wrap(plan: Arc<Self>) -> CachedPlan {
                CachedPlan::$variant(plan)
            }
            fn unwrap(plan: CachedPlan) -> Option<Arc<Self>> {
                match plan {
                    CachedPlan::$variant(p) => Some(p),
                    _ => None,
                }
            }
        }
    };
}
kept!(QueryPlan, Query);
kept!(UpdatePlan, Update);
kept!(InsertPlan, Insert);

impl PlanCache {
    /// The plan kept for `epoch` if there is one of this kind, else one
    /// `make` makes, kept for next time (when there is an epoch: see
    /// [`super::Database::plan_epoch`]).
    pub(super) fn get_or_plan<P: Kept>(
        &self,
        epoch: Option<u64>,
        make: impl FnOnce() -> Result<P>,
    ) -> Result<Arc<P>> {
        let Some(epoch) = epoch else {
            return make().map(Arc::new);
        };
        let kept = self.plan.lock().expect("plan cache").clone();
        if let Some(plan) = kept
            .filter(|(e, _)| *e == epoch)
            .and_then(|(_, p)| P::unwrap(p))
        {
            return Ok(plan);
        }
        let plan = Arc::new(make()?);
        *self.plan.lock().expect("plan cache") = Some((epoch, P::wrap(plan.clone())));
        Ok(plan)
    }
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCache")
    }
}
