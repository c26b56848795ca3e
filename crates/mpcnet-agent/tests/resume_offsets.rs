//! Property test of stream resumption: random writes by MPyC, random partial deliveries,
//! confirmations and carrier losses (everything in flight gone) at random points. Whatever
//! the schedule, the receiving MPyC gets exactly the bytes the sending MPyC wrote, in order,
//! once, the end last; and the sender never holds more than its bound.

use std::collections::VecDeque;

use bytes::Bytes;
use mpcnet_agent::resume::{Incoming, Outgoing, Position};
use proptest::prelude::*;

const BOUND: usize = 64;

#[derive(Debug, Clone)]
enum Step {
    /// MPyC writes this many bytes (as many as there is room for are taken).
    Write(usize),
    /// This many bytes in flight arrive and are written to the receiving MPyC.
    Deliver(usize),
    /// The receiver tells the sender what it delivered.
    Report,
    /// The carrier dies with everything in flight; a new one resumes the stream.
    LoseCarrier,
    /// The sending MPyC closes its socket.
    End,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..40).prop_map(Step::Write),
        4 => (1usize..50).prop_map(Step::Deliver),
        2 => Just(Step::Report),
        1 => Just(Step::LoseCarrier),
        1 => Just(Step::End),
    ]
}

/// One stream direction over carriers that come and go.
struct Simulation {
    sender: Outgoing,
    receiver: Incoming,
    written: Vec<u8>,
    in_flight: VecDeque<u8>,
    end_in_flight: bool,
    received: Vec<u8>,
    received_end: bool,
}

impl Simulation {
    fn new() -> Self {
        Self {
            sender: Outgoing::new(BOUND),
            receiver: Incoming::default(),
            written: Vec::new(),
            in_flight: VecDeque::new(),
            end_in_flight: false,
            received: Vec::new(),
            received_end: false,
        }
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::Write(wanted) if !self.sender.sent().ended => {
                let taken = wanted.min(self.sender.room());
                let start = self.written.len();
                self.written
                    .extend((start..start + taken).map(|i| (i % 251) as u8));
                let piece = Bytes::copy_from_slice(&self.written[start..]);
                self.in_flight.extend(piece.iter().copied());
                self.sender.push(piece);
            }
            Step::Write(_) => {}
            Step::Deliver(count) => self.deliver(count),
            Step::Report => {
                let reported = self.receiver.report();
                self.sender
                    .confirm(reported)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Step::LoseCarrier => {
                self.in_flight.clear();
                self.end_in_flight = false;
                let again = self
                    .sender
                    .resume_from(self.receiver.position())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for piece in again {
                    self.in_flight.extend(piece.iter().copied());
                }
                self.end_in_flight = self.sender.sent().ended && !self.received_end;
            }
            Step::End if !self.sender.sent().ended => {
                self.sender.end();
                self.end_in_flight = true;
            }
            Step::End => {}
        }
        prop_assert!(self.sender.held() <= BOUND, "held {}", self.sender.held());
        prop_assert_eq!(&self.received[..], &self.written[..self.received.len()]);
        Ok(())
    }

    fn deliver(&mut self, count: usize) {
        let count = count.min(self.in_flight.len());
        self.received.extend(self.in_flight.drain(..count));
        self.receiver.delivered(count);
        if self.in_flight.is_empty() && self.end_in_flight {
            self.end_in_flight = false;
            self.received_end = true;
            self.receiver.ended();
        }
    }

    /// After the schedule: the sender ends, one last carrier delivers everything.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        self.run(&Step::End)?;
        self.run(&Step::LoseCarrier)?;
        self.deliver(usize::MAX);
        let reported = self.receiver.report();
        self.sender
            .confirm(reported)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&self.received, &self.written, "every byte once, in order");
        prop_assert!(self.received_end, "the end arrived");
        prop_assert!(self.sender.is_done());
        prop_assert_eq!(
            self.receiver.position(),
            Position {
                bytes: self.written.len() as u64,
                ended: true
            }
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn every_byte_arrives_once_in_order_whatever_the_carriers_do(
        steps in proptest::collection::vec(step(), 0..200)
    ) {
        let mut simulation = Simulation::new();
        for step in &steps {
            simulation.run(step)?;
        }
        simulation.finish()?;
    }
}
