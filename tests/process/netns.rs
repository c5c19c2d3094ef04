//! Real partitions between real processes: a bridge, and one network namespace per test host
//! with a veth pair into it and an address of its own (10.231.X.N/24, X from the process id,
//! so that tests running at once use different subnets). The test itself talks to the hosts
//! from the root namespace through an address on the bridge. Links are cut with nftables rules
//! inside the hosts' namespaces: symmetric (each drops what comes from the other) or one way
//! (only the receiver drops). Everything made is removed on drop, and tests that use a lab run
//! one at a time (`serial`). Needs root, `ip` and `nft` (`.ci/setup` installs nftables).

use std::process::Command;

/// A host's place in the lab.
pub type Host = usize;

pub struct Lab {
    tag: String,
    subnet: String,
    hosts: Vec<String>,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Lab {
    /// `hosts` namespaces on one bridge.
    pub fn new(hosts: usize) -> Lab {
        assert!(hosts < 200, "one /24 holds the lab");
        let id = std::process::id() % 250;
        let lab = Lab {
            tag: format!("sm{id}"),
            subnet: format!("10.231.{id}"),
            hosts: (0..hosts).map(|h| format!("sm{id}h{h}")).collect(),
        };
        lab.clean(); // what a killed run of this pid may have left
        let bridge = lab.bridge();
        run(&["ip", "link", "add", &bridge, "type", "bridge"]);
        run(&["ip", "addr", "add", &format!("{}.254/24", lab.subnet), "dev", &bridge]);
        run(&["ip", "link", "set", &bridge, "up"]);
        for h in 0..hosts {
            let (ns, outside) = (&lab.hosts[h], lab.veth(h));
            run(&["ip", "netns", "add", ns]);
            run(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ]);
            run(&["ip", "link", "set", &outside, "master", &bridge, "up"]);
            run(&["ip", "-n", ns, "addr", "add", &format!("{}/24", lab.addr(h)), "dev", "eth0"]);
            run(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "cut"]);
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "nft",
                "add",
                "chain",
                "inet",
                "cut",
                "input",
                "{ type filter hook input priority 0; }",
            ]);
        }
        lab
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn veth(&self, h: Host) -> String {
        format!("{}v{h}", self.tag)
    }

    /// Host `h`'s address.
    pub fn addr(&self, h: Host) -> String {
        format!("{}.{}", self.subnet, h + 1)
    }

    /// Where a process on host `h` runs.
    pub fn place(&self, h: Host) -> super::Place {
        super::Place { netns: Some(self.hosts[h].clone()), addr: self.addr(h) }
    }

    /// Host `to` drops everything from host `from`; `from` still hears `to`.
    pub fn cut_one_way(&self, from: Host, to: Host) {
        let rule = format!("ip saddr {} drop", self.addr(from));
        run(&[
            "ip",
            "netns",
            "exec",
            &self.hosts[to],
            "nft",
            "add",
            "rule",
            "inet",
            "cut",
            "input",
            &rule,
        ]);
    }

    /// Neither host hears the other.
    pub fn cut(&self, a: Host, b: Host) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Every cut made so far is undone.
    pub fn heal(&self) {
        for ns in &self.hosts {
            run(&["ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", "cut", "input"]);
        }
    }

    /// Removes the namespaces, the bridge and the veths, whatever of them exists.
    fn clean(&self) {
        for (h, ns) in self.hosts.iter().enumerate() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            // The kernel removes a namespace's devices when it frees the namespace, which may
            // be later: the host side goes now, and its peer with it.
            let _ = Command::new("ip").args(["link", "del", &self.veth(h)]).output();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge()]).output();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.clean();
    }
}
