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
