//! `proxmox-backup-manager sync-job ...`: list, show, create, update and
//! remove sync jobs, and with them which encryption keys a job uses.
//!
//! Every command calls the handlers of `pbs_keystore::api2::config::sync`
//! as the administrator, so the CLI keeps exactly the API's rules. The
//! options of `create` and `update` are the parameters of their routes,
//! generated from the route's schema ([`RouteOptions`]): each job property
//! is declared once, in `pbs_api_types`, and a new one is an option here
//! without an edit. Their values are parsed as the API parses a request.

use std::marker::PhantomData;
use std::process::ExitCode;

use anyhow::Error;
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Args, Command, FromArgMatches, Subcommand};

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::{ApiStringFormat, ObjectSchema, ParameterError, Schema};

use pbs_api_types::SyncJobConfig;
use pbs_keystore::api2::config::sync::{
    self, API_METHOD_CREATE_SYNC_JOB_PARAMETERS, Caller, JobUpdate, UPDATE_PARAMETERS,
};

use super::output::{Column, Output, Table, render};
use super::{EXIT_OK, GlobalArgs, param_context, quoted};

/// `list`: what ties jobs to keys; several associated keys stack in the
/// cell, one per line, so the table stays narrow.
const JOB_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("sync-direction").render(render_direction),
    Column::new("store"),
    Column::new("remote"),
    Column::new("remote-store"),
    Column::new("active-encryption-key"),
    Column::new("associated-key").render(render::lines),
]);

/// `show`: the id and the key properties first, then every other property.
const JOB_FIELDS: Table = Table::new(&[
    Column::new("id"),
    Column::new("sync-direction").render(render_direction),
    Column::new("active-encryption-key"),
    Column::new("associated-key"),
])
.with_rest();

/// The direction, `pull` when unset (upstream's default).
fn render_direction(value: &serde_json::Value, _record: &serde_json::Value) -> String {
    value.as_str().unwrap_or("pull").to_string()
}

/// Sync job commands.
#[derive(Subcommand)]
pub enum SyncJobCommand {
    /// List sync jobs.
    List {
        /// Only jobs of this direction (default: all).
        #[arg(long, value_name = "DIRECTION",
              value_parser = PossibleValuesParser::new(["all", "pull", "push"]))]
        sync_direction: Option<String>,
    },
    /// Show a sync job.
    Show {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
    },
    /// Create a sync job.
    ///
    /// Every property of upstream's sync job is stored; this keystore runs
    /// no job (schedules, transfers), it keeps which keys each job needs.
    /// --active-encryption-key is for push jobs only; every key named must
    /// be usable by the job's owner (default root@pam), and an archived key
    /// can be associated, not active.
    Create {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
        #[command(flatten)]
        options: RouteOptions<CreateRoute>,
    },
    /// Change a sync job.
    ///
    /// --delete PROPERTY resets a property first, then the others given
    /// are set. Changing or clearing --active-encryption-key keeps the
    /// previous active key as an associated key; --associated-key
    /// replaces the whole list of associated keys (repeat it to name
    /// several), except for that previous active key.
    Update {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
        #[command(flatten)]
        options: RouteOptions<UpdateRoute>,
    },
    /// Remove a sync job; the keys it named are then no longer needed by it.
    #[command(visible_alias = "delete")]
    Remove {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
        /// Refuse if sync.cfg changed since it had this SHA-256 digest.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
}

/// Which route's parameters [`RouteOptions`] offers.
pub trait Route {
    /// The route's parameter schema.
    const PARAMETERS: &'static ObjectSchema;
    /// Whether at least one option must be given (an update).
    const NEEDS_ONE: bool;
}

/// `POST /config/sync`.
pub struct CreateRoute;

impl Route for CreateRoute {
    const PARAMETERS: &'static ObjectSchema = &API_METHOD_CREATE_SYNC_JOB_PARAMETERS;
    const NEEDS_ONE: bool = false;
}

/// `PUT /config/sync/{id}`.
pub struct UpdateRoute;

impl Route for UpdateRoute {
    const PARAMETERS: &'static ObjectSchema = &UPDATE_PARAMETERS;
    const NEEDS_ONE: bool = true;
}

/// The parameters of route `R` but `id` (the positional JOB_ID), as
/// `--name VALUE` options: the schema's description as help, required as
/// the schema says, repeatable for lists, enumerations offered as possible
/// values. Collected as the `name=value` pairs a request would carry.
pub struct RouteOptions<R> {
    pairs: Vec<(String, String)>,
    _route: PhantomData<R>,
}

/// The value name of an option: the completion kind for ids (see
/// `completion`), else what the value is.
fn value_name(name: &str, schema: &Schema) -> &'static str {
    match (name, schema) {
        ("active-encryption-key" | "associated-key", _) => "KEY_ID",
        ("owner", _) => "AUTH_ID",
        ("digest", _) => "HEX",
        ("delete", _) => "PROPERTY",
        (_, Schema::Boolean(_)) => "BOOL",
        (_, Schema::Integer(_)) => "N",
        // clap keeps `&'static str`s; the command is built once per run
        _ => name.to_uppercase().replace('-', "_").leak(),
    }
}

/// The enumeration of a string schema, if it has one.
fn enum_values(schema: &Schema) -> Option<Vec<&'static str>> {
    match schema {
        Schema::String(string) => match string.format {
            Some(ApiStringFormat::Enum(entries)) => {
                Some(entries.iter().map(|entry| entry.value).collect())
            }
            _ => None,
        },
        _ => None,
    }
}

impl<R: Route> RouteOptions<R> {
    fn names() -> impl Iterator<Item = &'static str> {
        R::PARAMETERS
            .properties
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| *name != "id")
    }
}

impl<R: Route> Args for RouteOptions<R> {
    fn augment_args(mut cmd: Command) -> Command {
        let mut group = Vec::new();
        for (name, optional, schema) in R::PARAMETERS.properties.iter() {
            if *name == "id" {
                continue;
            }
            let (item, action): (&Schema, _) = match schema {
                Schema::Array(array) => (array.items, ArgAction::Append),
                other => (*other, ArgAction::Set),
            };
            let mut arg = Arg::new(*name)
                .long(*name)
                .value_name(value_name(name, item))
                .help(schema.description().trim_end_matches('.').to_string())
                .required(!optional)
                .action(action);
            if let Some(values) = enum_values(item) {
                arg = arg.value_parser(PossibleValuesParser::new(values));
            }
            if *name != "digest" {
                group.push(*name);
            }
            cmd = cmd.arg(arg);
        }
        if R::NEEDS_ONE {
            cmd = cmd.group(
                ArgGroup::new("change")
                    .args(group)
                    .required(true)
                    .multiple(true),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<R: Route> FromArgMatches for RouteOptions<R> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut pairs = Vec::new();
        for name in Self::names() {
            for value in matches.get_many::<String>(name).into_iter().flatten() {
                pairs.push((name.to_string(), value.clone()));
            }
        }
        Ok(Self {
            pairs,
            _route: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<R: Route> RouteOptions<R> {
    /// The route's parameters: these options and `id`, parsed as the API
    /// parses a request.
    fn parameters(&self, id: &str) -> Result<serde_json::Value, Error> {
        let mut pairs = vec![("id".to_string(), id.to_string())];
        pairs.extend(self.pairs.iter().cloned());
        sync::parse_cli_parameters(R::PARAMETERS, &pairs)
    }
}

/// `result` of `verb`ing job `id`, its error saying what failed, then why
/// (a bad parameter named as the option it came from).
fn job_result<T>(verb: &str, id: &str, result: Result<T, Error>) -> Result<T, Error> {
    let id = quoted(id);
    match result {
        Err(err) if err.downcast_ref::<ParameterError>().is_some() => {
            Err(param_context(err, |param| match param {
                "id" => format!("failed to {verb} sync job"),
                _ => format!("failed to {verb} sync job {id} - invalid --{param}"),
            }))
        }
        other => other.layer_err(|| format!("failed to {verb} sync job {id}")),
    }
}

/// The text confirmation of a change, with the job as it is now.
fn changed(out: &Output, verb: &str, job: &SyncJobConfig) -> String {
    let table = serde_json::to_value(job)
        .map(|record| out.render_object(&record, &JOB_FIELDS))
        .unwrap_or_default();
    format!("{verb} sync job '{}'\n{table}", job.id)
}

/// The keys `before` named that `after` names no more, quoted.
fn dropped_keys(before: &SyncJobConfig, after: &SyncJobConfig) -> Vec<String> {
    let kept: Vec<&str> = after.key_ids().collect();
    quoted_once(before.key_ids().filter(|key| !kept.contains(key)))
}

/// `keys` quoted, each once, in their first order: a job may name a key
/// twice, active and associated.
fn quoted_once<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    keys.filter(|key| {
        let first = !seen.contains(key);
        seen.push(key);
        first
    })
    .map(quoted)
    .collect()
}

/// Says on stderr which keys an update let go of: no longer needed by the
/// job, a key shows as unused, and an archive, a remove and 30 days in
/// the trash are all that stand between it and the backups it decrypts.
/// `replaced_list`: the update gave `--associated-key`, which replaces
/// the whole list (the likely mistake).
fn warn_of_dropped_keys(before: &SyncJobConfig, after: &SyncJobConfig, replaced_list: bool) {
    let dropped = dropped_keys(before, after);
    if !dropped.is_empty() {
        let cause = if replaced_list {
            " (--associated-key replaces the whole list)"
        } else {
            ""
        };
        eprintln!(
            "Warning: sync job {} no longer names {}{cause} - if the job's older backups need \
             a key, name it again with --associated-key, repeated for each key to keep",
            quoted(&after.id),
            dropped.join(", ")
        );
    }
}

/// Says on stderr which keys the removed job `removed` named that no job
/// names any more (`jobs`, those left): they show as unused, as after an
/// update that lets go of them.
fn warn_of_unnamed_keys(removed: &SyncJobConfig, jobs: &[SyncJobConfig]) {
    let unnamed = quoted_once(removed.key_ids().filter(|key| {
        !jobs
            .iter()
            .any(|job| job.key_ids().any(|named| named == *key))
    }));
    if !unnamed.is_empty() {
        eprintln!(
            "Warning: no sync job names {} any more (sync job {} named {}) - if the job's older \
             backups need a key, keep it: it now shows as unused ('encryption-key list --unused')",
            unnamed.join(", "),
            quoted(&removed.id),
            if unnamed.len() == 1 { "it" } else { "them" },
        );
    }
}

/// Runs a sync job command.
pub fn run(global: &GlobalArgs, out: &Output, cmd: SyncJobCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    let caller = Caller::administrator(&dir);
    match cmd {
        SyncJobCommand::List { sync_direction } => {
            let direction = sync::parse_list_direction(sync_direction.as_deref())?;
            let (jobs, _digest) = sync::list_sync_jobs(&dir, &caller, direction)?;
            out.list(&jobs, &JOB_TABLE)?;
        }
        SyncJobCommand::Show { id } => {
            let (job, _digest) = sync::read_sync_job(&dir, &caller, &id)
                .map_err(|err| param_context(err, |_| "failed to show sync job".into()))?;
            out.object(&job, &JOB_FIELDS)?;
        }
        SyncJobCommand::Create { id, options } => {
            let created = options
                .parameters(&id)
                .and_then(|params| sync::create_sync_job(&dir, &caller, params));
            let job = job_result("create", &id, created)?;
            out.message(&job, |job| changed(out, "created", job))?;
        }
        SyncJobCommand::Update { id, options } => {
            // the keys it named before: an --associated-key list replaces
            // the old one, and a key dropped by mistake looks unused
            let before = sync::read_sync_job(&dir, &caller, &id).ok();
            let replaced_list = options
                .pairs
                .iter()
                .any(|(name, _)| name == "associated-key");
            let updated = options
                .parameters(&id)
                .and_then(JobUpdate::from_params)
                .and_then(|(id, update, digest)| {
                    sync::update_sync_job(&dir, &caller, &id, &update, digest.as_deref())
                });
            let job = job_result("update", &id, updated)?;
            if let Some((before, _digest)) = before {
                warn_of_dropped_keys(&before, &job, replaced_list);
            }
            out.message(&job, |job| changed(out, "updated", job))?;
        }
        SyncJobCommand::Remove { id, digest } => {
            // the keys it named: those no other job names look unused after
            let before = sync::read_sync_job(&dir, &caller, &id).ok();
            let removed = sync::delete_sync_job(&dir, &caller, &id, digest.as_deref());
            job_result("remove", &id, removed)?;
            if let (Some((removed, _)), Ok((jobs, _))) =
                (before, sync::list_sync_jobs(&dir, &caller, None))
            {
                warn_of_unnamed_keys(&removed, &jobs);
            }
            out.message(&(), |()| format!("removed sync job '{id}'\n"))?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
