//! The `proxmox-backup-manager` runner: the command on a config dir with a
//! fixed time zone and no `$PBS_CONFIG_DIR`, run to completion, its
//! output held against the [`Secrets`] registry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid};

use crate::secrets::Secrets;

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the manager on one config dir; every output of [`Manager::run`]
/// is checked against its secrets.
pub struct Manager {
    dir: PathBuf,
    user: Option<(Uid, Gid)>,
    umask_zero: bool,
    /// What no checked output may contain.
    pub secrets: Secrets,
}

impl Manager {
    /// The runner for `config_dir`, as the user of this process, with an
    /// empty secrets registry.
    pub fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.to_owned(),
            user: None,
            umask_zero: false,
            secrets: Secrets::default(),
        }
    }

    /// Runs every command as `uid`:`gid` (no supplementary groups), or as
    /// the user of this process for `None`.
    pub fn as_user(mut self, user: Option<(Uid, Gid)>) -> Self {
        self.user = user;
        self
    }

    /// Runs every command under umask 000.
    pub fn umask_zero(mut self) -> Self {
        self.umask_zero = true;
        self
    }

    /// The config dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The command `--config-dir DIR ARGS...`, `TZ=UTC0`, no
    /// `$PBS_CONFIG_DIR`, stdin from /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(&crate::bins::manager(), args)
    }

    /// [`Manager::command`] with another copy of the binary.
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("--config-dir")
            .arg(&self.dir)
            .args(args)
            .env("TZ", "UTC0")
            .env_remove("PBS_CONFIG_DIR")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            crate::privileges::run_as(&mut cmd, uid, gid);
        }
        if self.umask_zero {
            crate::privileges::umask_zero(&mut cmd);
        }
        cmd
    }

    /// Runs `cmd` to completion, feeding it `stdin`, without checking its
    /// output. The output must be UTF-8 and the command must exit, not be
    /// killed by a signal.
    pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run proxmox-backup-manager");
        if let Some(input) = stdin {
            // a command that refuses early may exit before reading its
            // input: a broken pipe then is its answer, not a test failure
            match child.stdin.take().unwrap().write_all(input) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(err) => panic!("unable to write to proxmox-backup-manager's stdin - {err}"),
            }
        }
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code().expect("exit status, not a signal"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    /// Runs `args` feeding `stdin`; stdout and stderr must hold no secret.
    #[track_caller]
    pub fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let run = Self::run_command(self.command(args), stdin);
        self.secrets
            .assert_absent(&format!("stdout of {args:?}"), &run.stdout);
        self.secrets
            .assert_absent(&format!("stderr of {args:?}"), &run.stderr);
        run
    }

    /// Runs `args`; stdout and stderr must hold no secret.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// Runs `--output-format json ARGS` (no secret in its output): its
    /// stdout when it succeeds; when it fails (exit 255, stdout empty) its
    /// error message without the `Error: ` prefix.
    #[track_caller]
    pub fn json_or_error(&self, args: &[&str]) -> Result<String, String> {
        let run = self.run(&[&["--output-format", "json"][..], args].concat());
        match run.code {
            0 => Ok(run.stdout),
            255 => {
                assert_eq!(run.stdout, "", "{args:?}");
                Err(run.stderr.trim_end().trim_start_matches("Error: ").into())
            }
            code => panic!("{args:?}: exit {code}: {run:?}"),
        }
    }

    /// `user generate-token root@pam NAME`, and with `role` an ACL giving
    /// the token that role on `/`: returns `root@pam!NAME:SECRET`.
    pub fn root_token(&self, name: &str, role: Option<&str>) -> String {
        let args = [
            "--output-format",
            "json",
            "user",
            "generate-token",
            "root@pam",
            name,
        ];
        let run = Self::run_command(self.command(&args), None);
        assert_eq!(run.code, 0, "generate-token: {run:?}");
        let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("token JSON");
        let secret = value["value"].as_str().expect("token secret");
        let tokenid = format!("root@pam!{name}");
        if let Some(role) = role {
            let run = self.run(&["acl", "update", "/", role, "--auth-id", &tokenid]);
            assert_eq!(run.code, 0, "acl update: {run:?}");
        }
        format!("{tokenid}:{secret}")
    }
}

/// `sync-job create ID --store local --remote REMOTE --remote-store
/// STORE`, then `extra`: the manager arguments of a new sync job.
pub fn sync_job_args<'a>(
    id: &'a str,
    remote: &'a str,
    remote_store: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let job = [
        "sync-job",
        "create",
        id,
        "--store",
        "local",
        "--remote",
        remote,
        "--remote-store",
        remote_store,
    ];
    [&job[..], extra].concat()
}

/// [`sync_job_args`] of a push job to store `remote` on remote `other`,
/// encrypting with `key`.
pub fn push_job_args<'a>(id: &'a str, key: &'a str) -> Vec<&'a str> {
    let push = ["--sync-direction", "push", "--active-encryption-key", key];
    sync_job_args(id, "other", "remote", &push)
}
