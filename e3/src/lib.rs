//! E3, the Extensible Evaluation Environment: namespaced networks behind real NAT rules, MPyC
//! workloads run over each candidate overlay, and reports of what worked and how fast.

pub mod candidate;
pub mod delay;
pub mod fault;
pub mod netns;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod topology;
pub mod workload;

/// Locks `mutex`, taking the data of a holder that panicked as it is: the locks here guard
/// plain bookkeeping (fault outcomes, a mediator's process) that stays whole between statements.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
