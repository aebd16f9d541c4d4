//! [`RestEnvironment`]: the [`RpcEnvironment`] of a request to the daemon.
//!
//! It carries what a handler may need beyond its parameters: the
//! authenticated id (who acts), the client's address (where from), the
//! server state (config dir, ticket keys, throttles, log) and the result
//! attributes that go beside `data` in the answer (`digest`). Handlers
//! reach it with [`RestEnvironment::of`]; the config dir it hands them acts
//! for the caller, so every change is recorded in the audit log with who
//! asked and from where.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, OnceLock};

use anyhow::{Error, format_err};
use serde_json::Value;

use proxmox_router::{RpcEnvironment, RpcEnvironmentType};

use pbs_api_types::Authid;
use pbs_config::ConfigDir;
use pbs_config::audit::Caller;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::server::ServerState;

/// The environment of one API request.
pub struct RestEnvironment {
    state: Arc<ServerState>,
    result_attributes: Value,
    auth_id: Option<String>,
    client_ip: Option<SocketAddr>,
    /// The config dir acting for this request's caller (see
    /// [`RestEnvironment::dir`]).
    dir: ConfigDir,
    user_info: OnceLock<Arc<CachedUserInfo>>,
}

impl RestEnvironment {
    /// The environment of a request from `client_ip`, made by `auth_id`
    /// (`None` before a login).
    pub fn new(state: Arc<ServerState>, auth_id: Option<String>, client_ip: SocketAddr) -> Self {
        let dir = acting_dir(&state.dir, auth_id.as_deref(), Some(client_ip));
        Self {
            state,
            result_attributes: Value::Object(Default::default()),
            auth_id,
            client_ip: Some(client_ip),
            dir,
            user_info: OnceLock::new(),
        }
    }

    /// The concrete environment behind a handler's `rpcenv`.
    ///
    /// # Errors
    ///
    /// If the handler was called from elsewhere than the daemon.
    pub fn of(rpcenv: &dyn RpcEnvironment) -> Result<&Self, Error> {
        rpcenv.as_any().downcast_ref::<Self>().ok_or_else(|| {
            format_err!("internal error - API handler called outside the API daemon")
        })
    }

    /// The server state.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The config dir, acting for this request's caller: what it changes is
    /// recorded in the audit log as done by the authenticated id from the
    /// client's address (shares the daemon's caches).
    pub fn dir(&self) -> &ConfigDir {
        &self.dir
    }

    /// The authenticated id.
    ///
    /// # Errors
    ///
    /// If the request is not authenticated (a [`World`] method asked).
    ///
    /// [`World`]: proxmox_router::Permission::World
    pub fn auth_id(&self) -> Result<Authid, Error> {
        self.auth_id
            .as_deref()
            .ok_or_else(|| format_err!("internal error - request not authenticated"))?
            .parse()
    }

    /// Users and ACLs, read once per request (the permission check and the
    /// handler share them).
    pub fn user_info(&self) -> Result<Arc<CachedUserInfo>, Error> {
        if let Some(info) = self.user_info.get() {
            return Ok(Arc::clone(info));
        }
        let info = Arc::new(CachedUserInfo::new(self.dir())?);
        Ok(Arc::clone(self.user_info.get_or_init(|| info)))
    }
}

impl RpcEnvironment for RestEnvironment {
    fn result_attrib_mut(&mut self) -> &mut Value {
        &mut self.result_attributes
    }

    fn result_attrib(&self) -> &Value {
        &self.result_attributes
    }

    fn env_type(&self) -> RpcEnvironmentType {
        // runs as root, like upstream's proxmox-backup-api
        RpcEnvironmentType::PRIVILEGED
    }

    fn set_auth_id(&mut self, auth_id: Option<String>) {
        self.auth_id = auth_id;
        self.dir = acting_dir(&self.state.dir, self.auth_id.as_deref(), self.client_ip);
    }

    fn get_auth_id(&self) -> Option<String> {
        self.auth_id.clone()
    }

    fn set_client_ip(&mut self, client_ip: Option<SocketAddr>) {
        self.client_ip = client_ip;
        self.dir = acting_dir(&self.state.dir, self.auth_id.as_deref(), self.client_ip);
    }

    fn get_client_ip(&self) -> Option<SocketAddr> {
        self.client_ip
    }
}

/// `dir` acting for `auth_id` from `client`; without both (a request
/// before its login), the daemon's own, which the audit log records as
/// `local`: no handler changes the store unauthenticated.
fn acting_dir(dir: &ConfigDir, auth_id: Option<&str>, client: Option<SocketAddr>) -> ConfigDir {
    match (auth_id.and_then(|id| id.parse::<Authid>().ok()), client) {
        (Some(actor), Some(client)) => dir.with_caller(Caller::api(actor, client.ip())),
        _ => {
            static LOCAL: LazyLock<Caller> = LazyLock::new(Caller::local);
            dir.with_caller(LOCAL.clone())
        }
    }
}
