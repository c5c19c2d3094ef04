//! The madsim harness that runs the real server, client and node-agent code on simulated meta and
//! data nodes with crashes and partitions. It arrives with the runtime (issue: madsim full-stack
//! simulation); the in-process simulator in `tests/` already proves the core.
