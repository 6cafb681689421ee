//! `marketsync queue`: list, show, retry and drop jobs.

use super::render::{clip, print_json, state_tone, when, Table, Tone};
use crate::config::Config;
use crate::store::queue::{self, JobState, Requeued};

#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// Jobs, newest first.
    List {
        /// pending, running, retrying, done or dead.
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// Only this channel's jobs (cartona, medusa...).
        #[arg(long)]
        channel: Option<String>,
        /// At most this many jobs, newest first; 0 for all (a cut listing says so on stderr).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// One job, with its payload and last error.
    Show {
        /// The job's id (`queue list` shows it).
        id: i64,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Run a dead or retrying job again now (attempts reset), or every dead job with --dead.
    Retry {
        /// The job's id (`queue list` shows it).
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Every dead job instead of one.
        #[arg(long)]
        dead: bool,
        /// With --dead: only this channel's dead jobs (cartona, medusa...).
        #[arg(long, requires = "dead")]
        channel: Option<crate::config::ChannelKind>,
    },
    /// Delete a job that is not running.
    Drop {
        /// The job's id (`queue list` shows it).
        id: i64,
    },
}

fn parse_state(s: &str) -> Result<JobState, crate::config::BadValue> {
    JobState::parse(s).ok_or_else(|| {
        crate::config::BadValue(format!(
            "unknown state {s:?}; use pending, running, retrying, done or dead"
        ))
    })
}

pub fn run(config: &Config, cmd: &QueueCommand) -> anyhow::Result<i32> {
    match cmd {
        QueueCommand::List {
            state,
            channel,
            limit,
            json,
        } => {
            let store = super::open_for_reading(config)?;
            let jobs = queue::list(
                &store,
                *state,
                channel.as_deref(),
                super::render::limit(*limit),
            )?;
            super::render::cut_notice(
                jobs.len(),
                queue::list_count(&store, *state, channel.as_deref())?,
                "jobs",
            );
            if *json {
                print_json(&jobs)?;
                return Ok(0);
            }
            let mut t = Table::new(&[
                "ID",
                "CHANNEL",
                "KIND",
                "KEY",
                "STATE",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "LAST ERROR",
            ]);
            for j in &jobs {
                let waiting = matches!(j.state, JobState::Pending | JobState::Retrying);
                t.row(vec![
                    (j.id.to_string(), Tone::Plain),
                    (j.channel.clone(), Tone::Plain),
                    (j.kind.clone(), Tone::Plain),
                    (clip(&j.key, 40), Tone::Plain),
                    (j.state.as_str().to_string(), state_tone(j.state.as_str())),
                    (j.attempts.to_string(), Tone::Plain),
                    (
                        if waiting {
                            when(Some(j.next_attempt_at))
                        } else {
                            "-".into()
                        },
                        Tone::Plain,
                    ),
                    (
                        j.last_error
                            .as_deref()
                            .map(|e| clip(e, 60))
                            .unwrap_or_else(|| "-".into()),
                        Tone::Plain,
                    ),
                ]);
            }
            print!("{}", t.render());
            if jobs.is_empty() {
                println!("(no jobs)");
            }
            Ok(0)
        }
        QueueCommand::Show { id, json } => {
            let store = super::open_for_reading(config)?;
            let Some(j) = queue::get(&store, *id)? else {
                eprintln!("error: job {id} does not exist (see `marketsync queue list`)");
                return Ok(1);
            };
            if *json {
                print_json(&j)?;
                return Ok(0);
            }
            println!("job          {}", j.id);
            println!("channel      {}", j.channel);
            println!("kind         {}", j.kind);
            println!("key          {}", j.key);
            println!(
                "state        {}",
                super::render::paint(j.state.as_str(), state_tone(j.state.as_str()))
            );
            println!("attempts     {}", j.attempts);
            println!("next attempt {}", when(Some(j.next_attempt_at)));
            println!("created      {}", when(Some(j.created_at)));
            println!("updated      {}", when(Some(j.updated_at)));
            println!("error class  {}", j.error_class.as_deref().unwrap_or("-"));
            println!("last error   {}", j.last_error.as_deref().unwrap_or("-"));
            println!("payload      {}", serde_json::to_string_pretty(&j.payload)?);
            Ok(0)
        }
        QueueCommand::Retry { id, dead, channel } => {
            let store = super::open_for_writing(config)?;
            if *dead {
                let ids = queue::retry_dead(&store, channel.map(|k| k.name()))?;
                println!(
                    "requeued {} dead job(s){}",
                    ids.len(),
                    if ids.is_empty() {
                        String::new()
                    } else {
                        format!(": {ids:?}")
                    }
                );
                return Ok(0);
            }
            let id = id.expect("clap requires an id without --dead");
            match queue::retry_now(&store, id)? {
                Requeued::Requeued => {
                    println!("job {id} is pending again and runs at the next worker pass")
                }
                Requeued::Superseded { by } => println!(
                    "job {id} closed: job {by} already carries a newer value for the same record"
                ),
            }
            Ok(0)
        }
        QueueCommand::Drop { id } => {
            let store = super::open_for_writing(config)?;
            queue::drop_job(&store, *id)?;
            println!("job {id} dropped");
            Ok(0)
        }
    }
}
