//! `plain`: MPyC straight over IP, as parties without any overlay would run it. Parties behind
//! a NAT need a port forward on their router for every party that dials them; E3 makes those
//! forwards and counts each as a manual step.

use std::path::Path;
use std::time::Instant;

use super::{Effort, Observation, RunOutcome, Tools, mpyc_port, pairs, run_mpyc};
use crate::record::PathKind;
use crate::scenario::{Network, Workload};
use crate::topology::Lab;

#[derive(Debug)]
pub struct Plain {
    tools: Tools,
    network: Network,
    port_forwards: u32,
}

impl Plain {
    /// Makes the port forwards: MPyC party a dials every b > a, so each b dialled from another
    /// site through a NAT gets one.
    pub fn prepare(lab: &Lab, network: &Network, tools: &Tools) -> anyhow::Result<Self> {
        let parties = network.parties();
        let mut port_forwards = 0;
        for b in 1..parties {
            let dialled_from_outside = (0..b).any(|a| !network.same_site(a, b));
            if dialled_from_outside && lab.forward_tcp_port(b, mpyc_port(b))? {
                port_forwards += 1;
            }
        }
        Ok(Self {
            tools: tools.clone(),
            network: network.clone(),
            port_forwards,
        })
    }

    /// A forward per NATed party dialled from outside, and per party one hand-written command
    /// line with every party's address.
    pub fn effort(&self) -> Effort {
        Effort {
            manual_steps: self.port_forwards + u32::from(self.parties()),
            config_lines: self.port_forwards + u32::from(self.parties()),
        }
    }

    /// Direct, unless some dialling party's firewall stops its TCP connection (MPyC's ports
    /// are not 80 or 443): MPyC needs every link, so one blocked pair fails them all.
    pub fn expected_path(&self) -> PathKind {
        let blocked = pairs(self.parties()).any(|(a, b)| self.blocked_reason(a, b).is_some());
        if blocked {
            PathKind::Failed
        } else {
            PathKind::Direct
        }
    }

    fn parties(&self) -> u16 {
        self.network.parties()
    }

    /// Why party a cannot dial party b's MPyC, if it cannot.
    fn blocked_reason(&self, a: u16, b: u16) -> Option<String> {
        let dialler = self.network.party_profile(a);
        (!self.network.same_site(a, b) && !dialler.allows_tcp_out(mpyc_port(b))).then(|| {
            format!(
                "no route: party {a} ({}) cannot dial party {b}'s MPyC port {}",
                dialler.describe(),
                mpyc_port(b)
            )
        })
    }

    pub async fn run(
        &mut self,
        lab: &Lab,
        workload: &Workload,
        logs: &Path,
    ) -> anyhow::Result<RunOutcome> {
        // A party's own address is its host's: `address_for` on its own site.
        let address = |me: u16, peer: u16| lab.address_for(me, peer);
        run_mpyc(
            lab,
            &self.tools.python,
            workload,
            address,
            Instant::now(),
            logs,
        )
        .await
    }

    /// Without an overlay there is no relay: when the MPC worked, every pair talked straight
    /// over IP; when it did not, the blocked pairs say why.
    pub fn observe(&self, worked: bool) -> Observation {
        let path = if worked {
            PathKind::Direct
        } else {
            PathKind::Unknown
        };
        let errors = if worked {
            Vec::new()
        } else {
            pairs(self.parties())
                .filter_map(|(a, b)| self.blocked_reason(a, b))
                .collect()
        };
        Observation {
            paths: pairs(self.parties()).map(|(a, b)| (a, b, path)).collect(),
            mpc_pids: (0..self.parties()).map(Some).collect(),
            errors,
        }
    }
}
