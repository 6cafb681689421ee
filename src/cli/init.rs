//! `marketsync init`: writes a first config that works. On a terminal it asks one question at
//! a time, with a default, and verifies as it goes (Odoo answers and which version, the login,
//! each channel's token); without one it takes the same answers as flags (or environment
//! variables for the secrets), so it can be scripted. Secrets go into credential files beside
//! the config (mode 0600, the names the systemd unit's `LoadCredential=` expects), the config
//! (mode 0600) names them, and it ends with `check`. An existing config is never overwritten
//! without `--force`.

use crate::config::{Config, OdooProtocol, RawConfig};
use crate::odoo::transport::Transport;
use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Odoo's base URL (e.g. https://erp.example.com).
    #[arg(long)]
    pub odoo_url: Option<String>,
    /// The Odoo database (listed on a terminal when Odoo allows).
    #[arg(long)]
    pub database: Option<String>,
    /// The Odoo user marketsync logs in as (a dedicated integration user).
    #[arg(long)]
    pub username: Option<String>,
    /// That user's API key (better: the environment variable, kept out of the process list).
    #[arg(long, env = "MARKETSYNC_INIT_ODOO_API_KEY", hide_env_values = true)]
    pub odoo_api_key: Option<String>,
    /// xmlrpc, jsonrpc or json2 (default: json2 from Odoo 19, xmlrpc before).
    #[arg(long)]
    pub protocol: Option<String>,
    /// The channels to enable, comma-separated (cartona, medusa; asked on a terminal).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// Each channel's answers (`--<channel>-...` flags), asked on a terminal.
    #[command(flatten)]
    pub channel: crate::channel::SetupArgs,
    /// The state file (default /var/lib/marketsync/state.db).
    #[arg(long)]
    pub state_path: Option<PathBuf>,
    /// Where the secrets are written, one file each (default: credentials/ beside the config).
    #[arg(long)]
    pub credentials_dir: Option<PathBuf>,
    /// Overwrite an existing config (and its credential files).
    #[arg(long)]
    pub force: bool,
}

/// Asks on a terminal, or takes the flag.
pub(crate) struct Asker {
    pub terminal: bool,
}

impl Asker {
    /// The flag's value, else (on a terminal) the answer, else the default; else an error
    /// naming the flag.
    pub fn text(
        &self,
        given: &Option<String>,
        question: &str,
        default: Option<&str>,
        flag: &str,
    ) -> anyhow::Result<String> {
        if let Some(v) = given.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            return Ok(v.to_string());
        }
        if !self.terminal {
            return default
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{question}: give --{flag} (no terminal to ask on)"));
        }
        loop {
            match default {
                Some(d) => eprint!("{question} [{d}]: "),
                None => eprint!("{question}: "),
            }
            std::io::stderr().flush().ok();
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line)? == 0 {
                bail!("{question}: no answer (end of input)");
            }
            let answer = line.trim();
            if !answer.is_empty() {
                return Ok(answer.to_string());
            }
            if let Some(d) = default {
                return Ok(d.to_string());
            }
        }
    }

    /// A secret: the flag or its environment variable, else asked without echo.
    pub fn secret(
        &self,
        given: &Option<String>,
        question: &str,
        flag: &str,
        env: &str,
    ) -> anyhow::Result<String> {
        if let Some(v) = given.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            return Ok(v.to_string());
        }
        if !self.terminal {
            bail!("{question}: give --{flag} or set {env} (no terminal to ask on)");
        }
        loop {
            let v = rpassword::prompt_password(format!("{question} (not shown): "))?;
            if !v.trim().is_empty() {
                return Ok(v.trim().to_string());
            }
        }
    }

    fn yes(&self, question: &str, default: bool) -> anyhow::Result<bool> {
        let d = if default { "y" } else { "n" };
        let a = self.text(&None, &format!("{question} (y/n)"), Some(d), "")?;
        Ok(matches!(a.to_ascii_lowercase().as_str(), "y" | "yes"))
    }
}

/// One secret to write: its credential file's name, the config key it fills (`token` is
/// written `token_file = ...`), and its value.
pub(crate) struct SecretFile {
    name: &'static str,
    field: &'static str,
    value: String,
}

/// A setting of a config table: a plain value, or a secret.
pub(crate) enum Setting {
    Plain(&'static str, toml::Value),
    Secret(SecretFile),
}

impl Setting {
    pub fn plain(key: &'static str, value: &str) -> Self {
        Setting::Plain(key, toml::Value::String(value.to_string()))
    }

    pub fn enabled() -> Self {
        Setting::Plain("enabled", toml::Value::Boolean(true))
    }

    /// A secret written to the credential file `name`, the config's `field`_file naming it.
    pub fn secret(name: &'static str, field: &'static str, value: String) -> Self {
        Setting::Secret(SecretFile { name, field, value })
    }
}

/// One table of the config being written, in order.
pub(crate) struct Table {
    pub name: &'static str,
    pub settings: Vec<Setting>,
}

/// What a channel's answers make: its table, and what the operator must do afterwards with
/// one of the secrets written (`(what, credential file)`), if anything.
pub(crate) struct ChannelSetup {
    pub table: Table,
    pub afterwards: Option<(&'static str, &'static str)>,
}

/// The config's text, each secret written by `secret` as its (key, value) pair.
fn render(tables: &[Table], secret: impl Fn(&SecretFile) -> (String, String)) -> String {
    let mut text = String::from(
        "# Written by `marketsync init`. Every setting, with its default: config.example.toml.\n\
         # Secrets are in the files named here, readable by root and the daemon's group only.\n",
    );
    for t in tables {
        text.push_str(&format!("\n[{}]\n", t.name));
        for s in &t.settings {
            let (key, value) = match s {
                Setting::Plain(key, value) => (key.to_string(), value.clone()),
                Setting::Secret(f) => {
                    let (key, value) = secret(f);
                    (key, toml::Value::String(value))
                }
            };
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text
}

pub async fn run(config_path: &Path, args: &InitArgs) -> anyhow::Result<i32> {
    if config_path.exists() && !args.force {
        bail!(
            "{} already exists; marketsync init never overwrites a config: pass --force to replace it, or --config for another path",
            config_path.display()
        );
    }
    let ask = Asker {
        terminal: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    };
    let say = |s: &str| eprintln!("{s}");
    let timeout = Duration::from_secs(15);

    // Odoo: it answers, which version; the databases where listed; the login.
    let url = ask.text(&args.odoo_url, "Odoo URL", None, "odoo-url")?;
    let url = url::Url::parse(&url)
        .map_err(|e| anyhow!("Odoo URL {url:?}: {e}; give it as https://erp.example.com"))?;
    let version = match Transport::new(OdooProtocol::Xmlrpc, url.clone(), timeout)
        .version()
        .await
    {
        Ok(v) => v,
        // Odoo 22 has no XML-RPC: its /web/version still says what it is.
        Err(_) => Transport::new(OdooProtocol::Json2, url.clone(), timeout)
            .version()
            .await
            .map_err(|e| anyhow!("Odoo at {url} does not answer as Odoo: {e}; check the URL"))?,
    };
    say(&format!("  Odoo {} answers at {url}", version.version));
    let listed = Transport::new(OdooProtocol::Jsonrpc, url.clone(), timeout)
        .list_databases()
        .await
        .unwrap_or_default();
    if ask.terminal && !listed.is_empty() && args.database.is_none() {
        say(&format!("  databases: {}", listed.join(", ")));
    }
    let database = ask.text(
        &args.database,
        "Odoo database",
        (listed.len() == 1).then(|| listed[0].as_str()),
        "database",
    )?;
    let username = ask.text(&args.username, "Odoo user", None, "username")?;
    let api_key = ask.secret(
        &args.odoo_api_key,
        "Odoo API key",
        "odoo-api-key",
        "MARKETSYNC_INIT_ODOO_API_KEY",
    )?;
    let proposed = if version.major >= 19 {
        "json2"
    } else {
        "xmlrpc"
    };
    let protocol = ask.text(
        &args.protocol,
        "Protocol (xmlrpc, jsonrpc, json2)",
        Some(proposed),
        "protocol",
    )?;

    let (secret, plain) = (Setting::secret, Setting::plain);
    let state = args
        .state_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/marketsync/state.db"));
    let mut tables = vec![
        Table {
            name: "odoo",
            settings: vec![
                plain("url", url.as_str()),
                plain("database", &database),
                plain("username", &username),
                secret("odoo-api-key", "api_key", api_key),
                plain("protocol", &protocol),
            ],
        },
        Table {
            name: "state",
            settings: vec![plain("path", &state.display().to_string())],
        },
    ];
    let wanted = |name: &str| -> anyhow::Result<bool> {
        match &args.channels {
            Some(list) => Ok(list.iter().any(|c| c.trim().eq_ignore_ascii_case(name))),
            None if ask.terminal => ask.yes(&format!("Enable the {name} channel?"), false),
            None => Ok(false),
        }
    };
    let known: Vec<&str> = crate::channel::SET_UP.iter().map(|k| k.name()).collect();
    if let Some(unknown) = args
        .channels
        .iter()
        .flatten()
        .find(|c| !known.contains(&c.trim().to_ascii_lowercase().as_str()))
    {
        bail!(
            "--channels: unknown channel {unknown:?}; marketsync init sets up {}",
            known.join(" and ")
        );
    }
    let mut afterwards = Vec::new();
    for kind in crate::channel::SET_UP {
        if wanted(kind.name())? {
            let setup = crate::channel::setup(*kind, &args.channel, &ask)?;
            afterwards.extend(setup.afterwards);
            tables.push(setup.table);
        }
    }

    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cred_dir = args
        .credentials_dir
        .clone()
        .unwrap_or_else(|| dir.join("credentials"));
    let cred_dir = if cred_dir.is_absolute() {
        cred_dir
    } else {
        std::env::current_dir()?.join(cred_dir)
    };
    let cred = |name: &str| cred_dir.join(name).display().to_string();
    // The config as written names the files; the one verified carries the values themselves.
    let text = render(&tables, |f| (format!("{}_file", f.field), cred(f.name)));
    let inline = render(&tables, |f| (f.field.to_string(), f.value.clone()));
    let secrets: Vec<&SecretFile> = tables
        .iter()
        .flat_map(|t| &t.settings)
        .filter_map(|s| match s {
            Setting::Secret(f) => Some(f),
            Setting::Plain(..) => None,
        })
        .collect();

    // Verified before anything is written: the config is valid, Odoo takes the key, each
    // channel takes its token.
    let config: Config = RawConfig::parse(&inline)
        .and_then(|r| r.validate())
        .map_err(|e| anyhow!("the answers do not make a valid config: {e}"))?;
    crate::odoo::OdooClient::connect(&config.odoo)
        .await
        .map_err(|e| anyhow!("{}", crate::secret::scrub(&e.to_string())))?;
    say(&format!("  logged in to Odoo as {username}"));
    for ch in config.enabled_channels() {
        let (ok, detail) = crate::channel::reach(ch).await;
        if !ok {
            bail!("{}: {detail}", ch.kind.name());
        }
        say(&format!("  {detail}"));
    }

    let access = Access {
        group: daemon_group(),
    };
    std::fs::create_dir_all(&cred_dir)
        .with_context(|| format!("creating {}", cred_dir.display()))?;
    access.apply(&cred_dir, access.dir_mode())?;
    for s in &secrets {
        write_private(&cred_dir.join(s.name), &s.value, access)?;
    }
    write_private(config_path, &text, access)?;
    say(&format!(
        "wrote {} and {} secret file(s) in {} (mode {:o}{})",
        config_path.display(),
        secrets.len(),
        cred_dir.display(),
        access.file_mode(),
        if access.group.is_some() {
            ", group marketsync: the daemon reads them as they are"
        } else {
            ""
        }
    ));
    for (what, file) in afterwards {
        say(&format!("{what}: {}", cred(file)));
    }
    if access.group.is_none() {
        say("no marketsync group here yet (the package or systemd-sysusers makes it): under systemd, LoadCredential= each file and point the *_file keys at /run/credentials/<unit>/<name>, or run init again once the group exists");
    }
    let config = Config::load(config_path).map_err(|e| anyhow!("{e}"))?;
    super::check::run(&config, false).await
}

/// The id of the daemon's group (`marketsync`, made by the package or systemd-sysusers), if
/// this machine has it.
fn daemon_group() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == "marketsync").then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Who may read what init writes: the owner only (0600, directories 0700), or with the
/// daemon's group where it exists (0640 and 0750, group marketsync), so the daemon under
/// systemd reads the same files `check` does, as the package leaves its config.
#[derive(Clone, Copy)]
struct Access {
    group: Option<u32>,
}

impl Access {
    fn file_mode(self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    fn dir_mode(self) -> u32 {
        if self.group.is_some() {
            0o750
        } else {
            0o700
        }
    }

    fn apply(self, path: &Path, mode: u32) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Some(gid) = self.group {
                std::os::unix::fs::chown(path, None, Some(gid))
                    .with_context(|| format!("giving {} to group marketsync", path.display()))?;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }
}

/// Writes a file that others never read, even briefly (created 0600, then given its access).
fn write_private(path: &Path, text: &str, access: Access) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    drop(f);
    access.apply(path, access.file_mode())
}
