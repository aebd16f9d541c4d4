//! Access control lists: `acl.cfg`, in upstream PBS's line format.
//!
//! One line per path, propagation flag and set of users and roles:
//!
//! ```text
//! acl:1:/system/encryption-keys:alice@pbs,alice@pbs!backup:Audit
//! acl:0:/system/encryption-keys/offsite:bob@pbs:Admin
//! ```
//!
//! `acl:PROPAGATE:PATH:UGIDS:ROLES`, PROPAGATE `0` or `1`, UGIDS a comma list
//! of user ids, token ids and `@group`s, ROLES a comma list of role names.
//! The file is parsed into an [`AclTree`], one node per path component; the
//! privileges of an auth id on a path come from the deepest node on the way
//! that names it (deeper entries replace inherited ones, `NoAccess` wins
//! within a node), as upstream computes them.
//!
//! Deliberate differences from upstream, both on the safe side:
//! - a role name this build does not know (a newer PBS's role) is kept and
//!   written back, and grants no privilege, but still replaces inherited
//!   roles on its path; upstream refuses the whole file;
//! - `@group` entries are kept and written back, and grant nothing: PBS has
//!   no group membership (upstream does the same).
//!
//! Writers take `.acl.lck`; the file is replaced atomically (0640
//! root:backup), so readers never lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Error, bail, format_err};

use pbs_api_types::{ACL_PATH_REGEX, AclListItem, Authid, role_privileges};

use crate::files::ACL_CFG;
use crate::{AclLock, ConfigDir};

/// The ACL path of the key store; a key's own is `KEYS_ACL_PATH/<id>`.
pub const KEYS_ACL_PATH: &str = "/system/encryption-keys";

/// The role that masks everything else on its path.
pub const ROLE_NAME_NO_ACCESS: &str = "NoAccess";

/// Role name → propagate flag.
pub type RoleMap = BTreeMap<String, bool>;

/// One path component's entries and the nodes below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclTreeNode {
    /// Roles of users and tokens on this path.
    pub users: BTreeMap<Authid, RoleMap>,
    /// Roles of groups on this path (kept, never applied).
    pub groups: BTreeMap<String, RoleMap>,
    /// Nodes of the paths below, by component.
    pub children: BTreeMap<String, AclTreeNode>,
}

fn insert_role(map: &mut RoleMap, role: &str, propagate: bool) {
    if role == ROLE_NAME_NO_ACCESS {
        map.clear();
    } else {
        map.remove(ROLE_NAME_NO_ACCESS);
    }
    map.insert(role.to_string(), propagate);
}

impl AclTreeNode {
    /// The roles of `auth_id` on this node that apply at the node itself
    /// (`leaf`) or below it (propagated ones only). `NoAccess` hides the rest.
    fn extract_roles(&self, auth_id: &Authid, leaf: bool) -> RoleMap {
        let mut map = RoleMap::new();
        let Some(roles) = self.users.get(auth_id) else {
            return map;
        };
        for (role, propagate) in roles {
            if *propagate || leaf {
                if role == ROLE_NAME_NO_ACCESS {
                    let mut only = RoleMap::new();
                    only.insert(role.clone(), false);
                    return only;
                }
                map.insert(role.clone(), *propagate);
            }
        }
        map
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.children.is_empty()
    }
}

/// The parsed `acl.cfg`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclTree {
    /// The node of `/`.
    pub root: AclTreeNode,
}

/// Splits an ACL path into its components (`/` gives none).
pub fn split_acl_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// Checks the syntax of an ACL path (`/` or `/`-separated safe ids): what
/// a line of `acl.cfg` may hold (upstream reads any such path).
pub fn check_acl_path_syntax(path: &str) -> Result<(), Error> {
    if path.len() > 128 || !ACL_PATH_REGEX.is_match(path) {
        bail!(
            "invalid ACL path {path:?} - expected '/' or '/'-separated names of letters, digits, '.', '_', '-' (at most 128 characters)"
        );
    }
    Ok(())
}

/// Checks an ACL path given to change an ACL: its syntax, and that it is a
/// path upstream's `check_acl_path` knows (so a typo such as
/// `/system/encryption-key` is refused, not stored and never matched):
/// `/`, `/access` (`/acl`, `/users`, `/domains`, `/openid/{id}`),
/// `/datastore/{store}/{namespace...}`, `/remote/{remote}/{store}/{namespace...}`,
/// `/system` (`/encryption-keys/{id}`, `/s3-endpoint/{id}`, `/certificates`,
/// `/disks`, `/log`, `/notifications`, `/status`, `/tasks`, `/time`,
/// `/services/{service}`, `/network`, `/network/dns`,
/// `/network/interfaces/{iface}`), `/tape` (`/device/{name}`, `/pool/{name}`,
/// `/job/{id}`); a trailing `{...}` part may be left out.
pub fn check_acl_path(path: &str) -> Result<(), Error> {
    check_acl_path_syntax(path)?;
    if !is_known_acl_path(&split_acl_path(path)) {
        bail!(
            "invalid ACL path '{path}' - not a path PBS knows: use '/', or one below /access, \
             /datastore, /remote, /system or /tape (for encryption keys: \
             /system/encryption-keys or /system/encryption-keys/ID)"
        );
    }
    Ok(())
}

/// Whether upstream's `check_acl_path` accepts a path of these components.
fn is_known_acl_path(components: &[&str]) -> bool {
    let len = components.len();
    let depth = pbs_api_types::MAX_NAMESPACE_DEPTH;
    match components {
        [] => true,
        ["access"] => true,
        ["access", "acl" | "users" | "domains"] => true,
        ["access", "openid", ..] => len <= 3,
        ["datastore", ..] => len <= 2 + depth,
        ["remote", ..] => len <= 3 + depth,
        ["system"] => true,
        [
            "system",
            "certificates" | "disks" | "log" | "notifications" | "status" | "tasks" | "time",
        ] => true,
        ["system", "services", ..] => len <= 3,
        ["system", "network"] | ["system", "network", "dns"] => true,
        ["system", "network", "interfaces", ..] => len <= 4,
        ["system", "s3-endpoint" | "encryption-keys", ..] => len <= 3,
        ["tape"] => true,
        ["tape", "device" | "pool" | "job", ..] => len <= 3,
        _ => false,
    }
}

impl AclTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn node_mut(&mut self, path: &[&str]) -> &mut AclTreeNode {
        let mut node = &mut self.root;
        for comp in path {
            node = node.children.entry(comp.to_string()).or_default();
        }
        node
    }

    /// Gives `auth_id` `role` on `path`. `NoAccess` replaces every other role
    /// of it there; any other role replaces `NoAccess`.
    pub fn insert_user_role(&mut self, path: &str, auth_id: &Authid, role: &str, propagate: bool) {
        let node = self.node_mut(&split_acl_path(path));
        insert_role(
            node.users.entry(auth_id.clone()).or_default(),
            role,
            propagate,
        );
    }

    /// Gives group `group` (without `@`) `role` on `path`.
    pub fn insert_group_role(&mut self, path: &str, group: &str, role: &str, propagate: bool) {
        let node = self.node_mut(&split_acl_path(path));
        insert_role(
            node.groups.entry(group.to_string()).or_default(),
            role,
            propagate,
        );
    }

    /// Removes `role` of `auth_id` on `path`; returns whether it was there.
    pub fn delete_user_role(&mut self, path: &str, auth_id: &Authid, role: &str) -> bool {
        let comps = split_acl_path(path);
        let node = self.node_mut(&comps);
        let removed = match node.users.get_mut(auth_id) {
            Some(roles) => {
                let removed = roles.remove(role).is_some();
                if roles.is_empty() {
                    node.users.remove(auth_id);
                }
                removed
            }
            None => false,
        };
        self.prune(&comps);
        removed
    }

    /// Removes every entry of `auth_id` (when a user or token is deleted).
    pub fn delete_authid(&mut self, auth_id: &Authid) {
        fn walk(node: &mut AclTreeNode, auth_id: &Authid) {
            node.users.remove(auth_id);
            for child in node.children.values_mut() {
                walk(child, auth_id);
            }
            node.children.retain(|_, child| !child.is_empty());
        }
        walk(&mut self.root, auth_id);
    }

    /// Drops empty nodes along `path`, so no empty path stays in the file.
    fn prune(&mut self, path: &[&str]) {
        fn walk(node: &mut AclTreeNode, path: &[&str]) {
            if let Some((first, rest)) = path.split_first()
                && let Some(child) = node.children.get_mut(*first)
            {
                walk(child, rest);
                if child.is_empty() {
                    node.children.remove(*first);
                }
            }
        }
        walk(&mut self.root, path);
    }

    /// The roles of `auth_id` on `path` (role → propagate): those of the
    /// deepest node on the way that names `auth_id`.
    pub fn roles(&self, auth_id: &Authid, path: &[&str]) -> RoleMap {
        let mut node = &self.root;
        let mut role_map = node.extract_roles(auth_id, path.is_empty());
        for (index, comp) in path.iter().enumerate() {
            node = match node.children.get(*comp) {
                Some(node) => node,
                None => return role_map,
            };
            let new_map = node.extract_roles(auth_id, index + 1 == path.len());
            if !new_map.is_empty() {
                // deeper entries replace inherited ones
                role_map = new_map;
            }
        }
        role_map
    }

    /// The privileges `auth_id`'s own entries give it on `path` (for a
    /// token: before the intersection with its user's).
    pub fn privileges(&self, auth_id: &Authid, path: &[&str]) -> u64 {
        self.roles(auth_id, path)
            .keys()
            .filter_map(|role| role_privileges(role))
            .fold(0, |acc, privs| acc | privs)
    }

    /// Parses `acl.cfg` text. `filename` is only used in error messages.
    ///
    /// # Errors
    ///
    /// `unable to parse acl config "FILE", line N - WHAT`, naming the field.
    pub fn parse(filename: &std::path::Path, raw: &str) -> Result<Self, Error> {
        let mut tree = Self::new();
        for (index, line) in raw.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            tree.parse_acl_line(line).map_err(|err| {
                format_err!(
                    "unable to parse acl config {filename:?}, line {} - {err}",
                    index + 1
                )
            })?;
        }
        Ok(tree)
    }

    fn parse_acl_line(&mut self, line: &str) -> Result<(), Error> {
        let items: Vec<&str> = line.split(':').collect();
        if items.len() != 5 {
            bail!(
                "wrong number of items (expected acl:PROPAGATE:PATH:UGIDS:ROLES, got {} fields)",
                items.len()
            );
        }
        if items[0] != "acl" {
            bail!("line does not start with 'acl'");
        }
        let propagate = match items[1] {
            "0" => false,
            "1" => true,
            _ => bail!("expected '0' or '1' for propagate flag"),
        };
        let path = items[2];
        // a file may name any path, as upstream reads it; a change may not
        check_acl_path_syntax(path)?;
        let ugids: Vec<&str> = items[3].split(',').map(str::trim).collect();
        let roles: Vec<&str> = items[4].split(',').map(str::trim).collect();
        for role in &roles {
            if !proxmox_schema::api_types::SAFE_ID_REGEX.is_match(role) {
                bail!("invalid role name {role:?}");
            }
        }
        for ugid in ugids {
            if let Some(group) = ugid.strip_prefix('@') {
                if !proxmox_schema::api_types::SAFE_ID_REGEX.is_match(group) {
                    bail!("invalid group name {group:?}");
                }
                for role in &roles {
                    self.insert_group_role(path, group, role, propagate);
                }
            } else {
                let auth_id: Authid = ugid.parse()?;
                for role in &roles {
                    self.insert_user_role(path, &auth_id, role, propagate);
                }
            }
        }
        Ok(())
    }

    /// Writes the tree as `acl.cfg` text, in upstream's layout: per path,
    /// non-propagating lines first, entries with the same role set merged into
    /// one line, paths in sorted order. `root@pam` (always an administrator)
    /// is not written, as upstream.
    pub fn write(&self) -> String {
        let mut raw = String::new();
        write_node(&self.root, "", &mut raw);
        raw
    }

    /// Every entry, as `acl list` shows them.
    pub fn list(&self) -> Vec<AclListItem> {
        fn walk(node: &AclTreeNode, path: &str, out: &mut Vec<AclListItem>) {
            let shown = if path.is_empty() { "/" } else { path };
            for (auth_id, roles) in &node.users {
                for (role, propagate) in roles {
                    out.push(AclListItem {
                        path: shown.to_string(),
                        ugid: auth_id.to_string(),
                        ugid_type: "user".to_string(),
                        propagate: *propagate,
                        roleid: role.clone(),
                    });
                }
            }
            for (group, roles) in &node.groups {
                for (role, propagate) in roles {
                    out.push(AclListItem {
                        path: shown.to_string(),
                        ugid: group.clone(),
                        ugid_type: "group".to_string(),
                        propagate: *propagate,
                        roleid: role.clone(),
                    });
                }
            }
            for (name, child) in &node.children {
                walk(child, &format!("{path}/{name}"), out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }
}

fn write_node(node: &AclTreeNode, path: &str, raw: &mut String) {
    // role -> sorted set of ugids, per propagate flag
    let mut by_role: [BTreeMap<&str, Vec<String>>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (auth_id, roles) in &node.users {
        if !auth_id.is_token() && auth_id.user().as_str() == "root@pam" {
            continue;
        }
        for (role, propagate) in roles {
            by_role[*propagate as usize]
                .entry(role)
                .or_default()
                .push(auth_id.to_string());
        }
    }
    for (group, roles) in &node.groups {
        for (role, propagate) in roles {
            by_role[*propagate as usize]
                .entry(role)
                .or_default()
                .push(format!("@{group}"));
        }
    }
    let shown = if path.is_empty() { "/" } else { path };
    for (propagate, map) in by_role.iter().enumerate() {
        // ugid list -> roles
        let mut by_ugids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (role, ugids) in map {
            let mut ugids = ugids.clone();
            ugids.sort();
            by_ugids.entry(ugids.join(",")).or_default().push(role);
        }
        for (ugids, roles) in by_ugids {
            let roles = if roles.contains(&ROLE_NAME_NO_ACCESS) {
                ROLE_NAME_NO_ACCESS.to_string()
            } else {
                roles.join(",")
            };
            let _ = writeln!(raw, "acl:{propagate}:{shown}:{ugids}:{roles}");
        }
    }
    for (name, child) in &node.children {
        write_node(child, &format!("{path}/{name}"), raw);
    }
}

/// `acl.cfg` of one [`ConfigDir`]; get it with [`ConfigDir::acl_config`].
#[derive(Clone, Copy)]
pub struct AclConfig<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The ACL config of this config dir.
    pub fn acl_config(&self) -> AclConfig<'_> {
        AclConfig { dir: self }
    }
}

impl AclConfig<'_> {
    /// Path of `acl.cfg` (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path(ACL_CFG.name)
    }

    /// Takes the ACL config lock.
    pub fn lock_config(&self) -> Result<AclLock, Error> {
        self.dir.lock_config_file()
    }

    /// The parsed tree and the SHA-256 of the file text (a missing file is
    /// an empty tree). Takes no lock.
    pub fn config(&self) -> Result<(AclTree, [u8; 32]), Error> {
        let path = self.config_path();
        let raw = self.dir.read_text(&ACL_CFG)?;
        let digest = openssl::sha::sha256(raw.as_bytes());
        Ok((AclTree::parse(&path, &raw)?, digest))
    }

    /// Writes the tree atomically (0640, root:backup as root).
    ///
    /// # Locking
    ///
    /// The caller holds the ACL lock and passes its guard.
    pub fn save_config(&self, tree: &AclTree, held: &AclLock) -> Result<(), Error> {
        self.dir.write_locked(tree.write().as_bytes(), held, None)
    }
}

/// The ACL tree of the default config dir and its digest.
pub fn config() -> Result<(AclTree, [u8; 32]), Error> {
    ConfigDir::default_dir()?.acl_config().config()
}

/// Takes the ACL lock of the default config dir.
pub fn lock_config() -> Result<AclLock, Error> {
    ConfigDir::default_dir()?.acl_config().lock_config()
}

/// Saves the ACL tree of the default config dir.
pub fn save_config(tree: &AclTree, held: &AclLock) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .acl_config()
        .save_config(tree, held)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use pbs_api_types::{PRIV_SYS_AUDIT, PRIV_SYS_MODIFY, ROLE_ADMIN, ROLE_AUDIT};

    use super::*;

    fn auth(text: &str) -> Authid {
        text.parse().unwrap()
    }

    fn privs(tree: &AclTree, who: &str, path: &str) -> u64 {
        tree.privileges(&auth(who), &split_acl_path(path))
    }

    const SAMPLE: &str = "\
acl:1:/:admin@pbs:Admin
acl:1:/system/encryption-keys:alice@pbs,alice@pbs!ro:Audit
acl:0:/system/encryption-keys/k1:alice@pbs:Admin
acl:1:/system/encryption-keys/k2:admin@pbs:NoAccess
acl:1:/datastore/store1:@backupers:DatastoreBackup
acl:1:/system/encryption-keys/k3:alice@pbs:FutureRole
";

    #[test]
    fn parse_and_inherit_like_upstream() {
        let tree = AclTree::parse(Path::new("acl.cfg"), SAMPLE).unwrap();
        assert_eq!(
            privs(&tree, "admin@pbs", "/system/encryption-keys/k1"),
            ROLE_ADMIN
        );
        // NoAccess on k2 replaces the inherited Admin
        assert_eq!(privs(&tree, "admin@pbs", "/system/encryption-keys/k2"), 0);
        assert_eq!(privs(&tree, "alice@pbs", "/system"), 0);
        assert_eq!(
            privs(&tree, "alice@pbs", "/system/encryption-keys"),
            ROLE_AUDIT
        );
        assert_eq!(
            privs(&tree, "alice@pbs", "/system/encryption-keys/x"),
            ROLE_AUDIT
        );
        // a non-propagating entry applies on its path only
        let k1 = privs(&tree, "alice@pbs", "/system/encryption-keys/k1");
        assert_eq!(
            k1 & (PRIV_SYS_AUDIT | PRIV_SYS_MODIFY),
            PRIV_SYS_AUDIT | PRIV_SYS_MODIFY
        );
        // an unknown role grants nothing but still replaces inherited roles
        assert_eq!(privs(&tree, "alice@pbs", "/system/encryption-keys/k3"), 0);
        assert_eq!(
            privs(&tree, "alice@pbs!ro", "/system/encryption-keys/k1"),
            ROLE_AUDIT
        );
        assert_eq!(privs(&tree, "bob@pbs", "/"), 0);
    }

    #[test]
    fn write_round_trips_in_upstream_layout() {
        let tree = AclTree::parse(Path::new("acl.cfg"), SAMPLE).unwrap();
        let text = tree.write();
        assert_eq!(
            text,
            "acl:1:/:admin@pbs:Admin\n\
             acl:1:/datastore/store1:@backupers:DatastoreBackup\n\
             acl:1:/system/encryption-keys:alice@pbs,alice@pbs!ro:Audit\n\
             acl:0:/system/encryption-keys/k1:alice@pbs:Admin\n\
             acl:1:/system/encryption-keys/k2:admin@pbs:NoAccess\n\
             acl:1:/system/encryption-keys/k3:alice@pbs:FutureRole\n"
        );
        assert_eq!(AclTree::parse(Path::new("acl.cfg"), &text).unwrap(), tree);
    }

    #[test]
    fn bad_lines_name_line_and_field() {
        for (line, want) in [
            ("acl:1:/:alice@pbs", "wrong number of items"),
            ("acx:1:/:alice@pbs:Admin", "does not start with 'acl'"),
            ("acl:2:/:alice@pbs:Admin", "propagate flag"),
            ("acl:1:/a b:alice@pbs:Admin", "invalid ACL path"),
            ("acl:1:/:alice:Admin", "invalid auth id"),
            ("acl:1:/:alice@pbs:Ad min", "invalid role name"),
        ] {
            let err = AclTree::parse(Path::new("acl.cfg"), &format!("\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 2") && err.contains(want),
                "{line}: {err}"
            );
        }
    }

    /// Regression test for issue 14, finding 5: `/system/encryption-key`
    /// (a typo) was accepted by `acl update`; paths are checked as upstream
    /// checks them. A file may still name any path (upstream reads it).
    #[test]
    fn acl_paths_are_checked_as_upstream_checks_them() {
        let namespace = "/ns".repeat(pbs_api_types::MAX_NAMESPACE_DEPTH);
        let datastore = format!("/datastore/store1{namespace}");
        let remote = format!("/remote/r1/store1{namespace}");
        for good in [
            "/",
            "/access",
            "/access/acl",
            "/access/users",
            "/access/domains",
            "/access/openid/realm1",
            "/datastore",
            "/datastore/store1",
            datastore.as_str(),
            "/remote/r1",
            remote.as_str(),
            "/system",
            "/system/encryption-keys",
            "/system/encryption-keys/offsite-2025",
            "/system/s3-endpoint/e1",
            "/system/certificates",
            "/system/disks",
            "/system/log",
            "/system/notifications",
            "/system/status",
            "/system/tasks",
            "/system/time",
            "/system/services/proxmox-backup-proxy",
            "/system/network",
            "/system/network/dns",
            "/system/network/interfaces/eth0",
            "/tape",
            "/tape/device/d1",
            "/tape/pool/p1",
            "/tape/job/j1",
        ] {
            check_acl_path(good).unwrap_or_else(|err| panic!("{good}: {err}"));
        }
        let too_deep_datastore = format!("{datastore}/ns");
        let too_deep_remote = format!("{remote}/ns");
        for bad in [
            "/system/encryption-key",
            "/system/encryption-keys/k1/extra",
            "/systems",
            "/config/encryption-keys",
            "/access/tickets",
            "/access/acl/x",
            "/access/openid/realm1/x",
            "/system/certificates/x",
            "/system/network/dns/x",
            "/system/network/interfaces/eth0/x",
            "/system/services/a/b",
            "/tape/drive/d1",
            too_deep_datastore.as_str(),
            too_deep_remote.as_str(),
        ] {
            let err = check_acl_path(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        // syntax first: a path that is not one quotes it escaped
        let err = check_acl_path("no-slash").unwrap_err().to_string();
        assert!(err.contains("\"no-slash\""), "{err}");
        // the file may hold any path
        let tree = AclTree::parse(Path::new("acl.cfg"), "acl:1:/whatever/x:a@pbs:Audit\n").unwrap();
        assert_eq!(tree.list().len(), 1);
    }

    #[test]
    fn no_access_replaces_and_is_replaced() {
        let mut tree = AclTree::new();
        let alice = auth("alice@pbs");
        tree.insert_user_role("/system", &alice, "Audit", true);
        tree.insert_user_role("/system", &alice, "NoAccess", true);
        assert_eq!(tree.write(), "acl:1:/system:alice@pbs:NoAccess\n");
        tree.insert_user_role("/system", &alice, "Admin", true);
        assert_eq!(tree.write(), "acl:1:/system:alice@pbs:Admin\n");
        assert!(tree.delete_user_role("/system", &alice, "Admin"));
        assert_eq!(tree.write(), "");
        assert!(tree.root.children.is_empty());
    }
}
