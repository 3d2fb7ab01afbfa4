//! One configuration for `kvnc serve`: the command line, `KVNC_*` environment variables and a
//! TOML file, in that order of precedence, then the built-in defaults.
//!
//! The file's keys are `kvnc serve`'s long option names, its values what the option takes
//! (`listen = "0.0.0.0:5900"`, `ws-allowed-origin = ["https://a"]`, `no-auth = true` for a
//! switch). A variable is the name in capitals with `_` for `-` after `KVNC_`
//! (`KVNC_PASSWORD_FILE`; a list is separated by commas, a switch is `true` or `false`).
//!
//! Both become `--key=value` arguments added after the real ones, so that clap checks all three
//! sources by the same rules and `ServeArgs` stays the one definition of every option. An
//! option given on the command line hides the same option, and any option it conflicts with,
//! from the environment and the file; one set in the environment hides the file's the same way.
//! Each value is first checked on its own, so that a bad one is reported with its line in the
//! file (or its variable) rather than as a command-line argument the user never typed.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::cli::{Cli, HidDevices, HidMode, ServeArgs, SourceSpec};

/// The file read when neither `--config` nor `KVNC_CONFIG` names one (only if it exists).
pub const DEFAULT_PATH: &str = "/etc/kvnc/kvnc.toml";
/// The variable naming the file when `--config` does not.
pub const PATH_VARIABLE: &str = "KVNC_CONFIG";
const PREFIX: &str = "KVNC_";
/// Subcommands that take options from the file and the environment: `serve`, `check` (what
/// `serve` would run with), and those sharing its gadget and media options, so that `kvnc gadget
/// up` makes the same gadget and `kvnc media` looks in the same directory as the service.
const CONFIGURED: [&str; 4] = ["serve", "check", "gadget", "media"];
/// Arguments of a subcommand that are not settings.
const NOT_SETTINGS: [&str; 3] = ["help", "version", "config"];

/// Shown under `kvnc serve --help` and `kvnc check --help`.
pub const PRECEDENCE_HELP: &str = "\
Every option can also be set in the configuration file (--config PATH or KVNC_CONFIG; default
/etc/kvnc/kvnc.toml if it exists) as `option-name = value`, or in the environment as
KVNC_OPTION_NAME. The command line wins over the environment, which wins over the file.
`kvnc check` validates the result and shows where each setting comes from.";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    /// The variable's name.
    Environment(String),
    File {
        path: PathBuf,
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("command line"),
            Origin::Environment(variable) => f.write_str(variable),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
        }
    }
}

/// An option not at its built-in default, as the subcommand received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The long option name, which is also the file's key.
    pub key: String,
    pub values: Vec<String>,
    pub origin: Origin,
}

/// What the configuration file and environment contributed, for `kvnc check` and messages.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The subcommand's options that are not at their defaults, in the subcommand's order.
    pub settings: Vec<Setting>,
}

impl Provenance {
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.settings.iter().find(|setting| setting.key == key).map(|setting| &setting.origin)
    }
}

/// A wrong value, key or file, with where it is (`FILE:LINE`, or the variable's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Option<String>,
    pub message: String,
}

impl Problem {
    fn new(location: Option<String>, message: impl Into<String>) -> Self {
        Self { location, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why there is nothing to run.
#[derive(Debug)]
pub enum Failure {
    /// Clap's own answer (also `--help` and `--version`), with where the options it names came
    /// from when the file or the environment supplied them.
    Clap { error: clap::Error, note: Option<String> },
    /// The file or the environment is wrong.
    Config(Vec<Problem>),
}

impl Failure {
    /// Prints the failure the way clap would and exits: status 2 for a wrong configuration, as
    /// clap does for a wrong command line (kvnc.service does not retry on 2).
    pub fn exit(self) -> ! {
        match self {
            Failure::Clap { error, note } => {
                let _ = error.print();
                if let Some(note) = note {
                    eprintln!("{note}");
                }
                std::process::exit(error.exit_code())
            }
            Failure::Config(problems) => {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                std::process::exit(2)
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Clap { error, note } => {
                write!(f, "{}", error.render())?;
                note.as_ref().map_or(Ok(()), |note| write!(f, "{note}"))
            }
            Failure::Config(problems) => problems.iter().try_for_each(|problem| writeln!(f, "{problem}")),
        }
    }
}

/// The command line of this process with the file and environment applied.
pub fn parse() -> Result<Cli, Failure> {
    parse_from(std::env::args_os().collect(), &|name| std::env::var_os(name), Path::new(DEFAULT_PATH))
}

/// [`parse`] with the arguments (program name first), the environment and the default file
/// given, for tests: setting a process's own environment is not thread-safe.
pub fn parse_from(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
    default_file: &Path,
) -> Result<Cli, Failure> {
    let mut command = Cli::command();
    command.build();
    // A first, forgiving parse finds the subcommand, --config and what the command line sets;
    // a command line that does not parse at all is left to the real parse to report.
    let Ok(probe) = lenient(command.clone()).try_get_matches_from(&args) else {
        return finish(&command, args, &Layers::default(), None);
    };
    let names = subcommand_names(&probe);
    let configured = names.first().is_some_and(|name| CONFIGURED.contains(&name.as_str()));
    let (Some(serve), Some(leaf), true) = (command.find_subcommand("serve"), find_leaf(&command, &names), configured)
    else {
        return finish(&command, args, &Layers::default(), None);
    };
    let mut levels = levels(&probe);
    levels.insert(0, &probe);
    let file = config_path(&levels, env, default_file);
    let mut problems = Vec::new();
    let file_entries = match &file {
        Some(path) => read_file(path, serve).unwrap_or_else(|found| {
            problems.extend(found);
            Vec::new()
        }),
        None => Vec::new(),
    };
    let env_entries = from_environment(serve, env).unwrap_or_else(|found| {
        problems.extend(found);
        Vec::new()
    });
    if !problems.is_empty() {
        return Err(Failure::Config(problems));
    }
    // A global option (`kvnc media --media-dir DIR list`) may have been given at another level.
    let given: Vec<&Arg> = settings(leaf)
        .filter(|arg| {
            let id = arg.get_id().as_str();
            // Clap copies global values up to levels that do not define them (and would panic
            // if asked for their source there): only the levels that know the id are asked.
            levels.iter().any(|level| {
                level.try_contains_id(id).unwrap_or(false) && level.value_source(id) == Some(ValueSource::CommandLine)
            })
        })
        .collect();
    let layers = Layers::stack(leaf, given, [env_entries, file_entries]);
    let args = insert(args, &layers.tokens);
    finish(&command, args, &layers, file)
}

/// Parses the final command line and notes where each setting came from.
fn finish(command: &Command, args: Vec<OsString>, layers: &Layers, file: Option<PathBuf>) -> Result<Cli, Failure> {
    let mut matches = command
        .clone()
        .try_get_matches_from(args)
        .map_err(|error| Failure::Clap { note: layers.note(&error), error })?;
    let settings = provenance(command, &matches, layers);
    let mut cli = Cli::from_arg_matches_mut(&mut matches)
        .map_err(|error| Failure::Clap { error: error.format(&mut command.clone()), note: None })?;
    cli.provenance = Provenance { file, settings };
    Ok(cli)
}

/// One option's value from the file or the environment, as arguments.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    /// Empty for a switch set to false: it still hides a lower layer's `true`.
    tokens: Vec<OsString>,
    origin: Origin,
    /// The option needs another one as well (`tls-cert` needs `tls-key`).
    needs_other: bool,
}

/// The arguments the environment and the file add, and where each option came from.
#[derive(Debug, Default)]
struct Layers {
    tokens: Vec<OsString>,
    /// Each added option, where it came from and whether it needs another one.
    origins: Vec<(String, Origin, bool)>,
}

impl Layers {
    /// Adds each layer's entries (highest precedence first) unless an option the command line
    /// or a higher layer set is the same or conflicts with it. Options the subcommand does not
    /// have (`listen` for `kvnc gadget up`) are left out.
    fn stack<'a>(leaf: &'a Command, given: Vec<&'a Arg>, layers: [Vec<Entry>; 2]) -> Layers {
        let mut taken = given;
        let mut stacked = Layers::default();
        for entries in layers {
            let mut this_layer = Vec::new();
            for entry in entries {
                let Some(arg) = setting(leaf, &entry.key) else { continue };
                if taken.iter().any(|higher| higher.get_id() == arg.get_id() || conflicting(leaf, higher, arg)) {
                    continue;
                }
                if !entry.tokens.is_empty() {
                    stacked.origins.push((entry.key.clone(), entry.origin.clone(), entry.needs_other));
                }
                stacked.tokens.extend(entry.tokens);
                this_layer.push(arg);
            }
            taken.extend(this_layer);
        }
        stacked
    }

    fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.iter().find(|(name, _, _)| name == key).map(|(_, origin, _)| origin)
    }

    /// Says where the options a clap error is about came from, when not from the command line:
    /// those it names, and for a missing option those that need one.
    fn note(&self, error: &clap::Error) -> Option<String> {
        let named = named_options(error);
        let missing = error.kind() == ErrorKind::MissingRequiredArgument;
        let sources: Vec<String> = self
            .origins
            .iter()
            .filter(|(key, _, needs_other)| named.contains(key) || (missing && *needs_other))
            .map(|(key, origin, _)| format!("{key} is set in {origin}"))
            .collect();
        (!sources.is_empty()).then(|| format!("note: {}", sources.join("; ")))
    }
}

fn conflicting(command: &Command, a: &Arg, b: &Arg) -> bool {
    // Declared on one side only (`conflicts_with` on one of the two).
    let declared =
        |from: &Arg, to: &Arg| command.get_arg_conflicts_with(from).iter().any(|c| c.get_id() == to.get_id());
    declared(a, b) || declared(b, a)
}

/// The subcommand's options that are settings.
fn settings(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|arg| arg.get_long().is_some() && !NOT_SETTINGS.contains(&arg.get_id().as_str()))
}

fn setting<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    settings(command).find(|arg| arg.get_long() == Some(key))
}

fn is_switch(arg: &Arg) -> bool {
    !arg.get_action().takes_values()
}

fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// `KVNC_` and the option's name in capitals, `_` for `-`.
pub fn variable(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// The same command, not stopping at errors, down to every subcommand.
fn lenient(command: Command) -> Command {
    let names: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
    names.into_iter().fold(command.ignore_errors(true), |command, name| command.mut_subcommand(name, lenient))
}

fn subcommand_names(matches: &ArgMatches) -> Vec<String> {
    let mut names = Vec::new();
    let mut level = matches;
    while let Some((name, sub)) = level.subcommand() {
        names.push(name.to_owned());
        level = sub;
    }
    names
}

/// The matches of each subcommand level below the top, outermost first.
fn levels(matches: &ArgMatches) -> Vec<&ArgMatches> {
    let mut levels = Vec::new();
    let mut level = matches;
    while let Some((_, sub)) = level.subcommand() {
        levels.push(sub);
        level = sub;
    }
    levels
}

fn find_leaf<'a>(command: &'a Command, names: &[String]) -> Option<&'a Command> {
    names.iter().try_fold(command, |command, name| command.find_subcommand(name))
}

/// `--config` (at whichever level it was given: it is global), else `KVNC_CONFIG`, else the
/// default file if there is one.
fn config_path(levels: &[&ArgMatches], env: &dyn Fn(&str) -> Option<OsString>, default_file: &Path) -> Option<PathBuf> {
    let given = levels.iter().rev().find_map(|level| level.try_get_one::<PathBuf>("config").ok().flatten().cloned());
    given
        .or_else(|| env(PATH_VARIABLE).filter(|value| !value.is_empty()).map(PathBuf::from))
        .or_else(|| default_file.exists().then(|| default_file.to_path_buf()))
}

/// The file's settings, checked against `kvnc serve`'s options.
fn read_file(path: &Path, serve: &Command) -> Result<Vec<Entry>, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::new(Some(path.display().to_string()), format!("cannot read the configuration file: {e}"))]
    })?;
    parse_file(&text, path, serve)
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&byte| byte == b'\n').count() + 1
}

fn parse_file(text: &str, path: &Path, serve: &Command) -> Result<Vec<Entry>, Vec<Problem>> {
    let at = |offset: usize| Some(format!("{}:{}", path.display(), line_of(text, offset)));
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|error| {
                let message = format!("not valid TOML: {}", error.message());
                Problem::new(at(error.span().map_or(0, |span| span.start)), message)
            })
            .collect());
    }
    // The table is sorted by key; problems read best in the file's order.
    let mut items: Vec<_> = table.get_ref().iter().collect();
    items.sort_by_key(|(key, _)| key.span().start);
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in items {
        let name: &str = key.get_ref();
        let Some(arg) = setting(serve, name) else {
            problems.push(Problem::new(at(key.span().start), unknown_key(name, serve)));
            continue;
        };
        let tokens = file_tokens(arg, name, value.get_ref())
            .and_then(|tokens| check_alone(serve, &tokens).map(|needs_other| (tokens, needs_other)));
        match tokens {
            Ok((tokens, needs_other)) => entries.push(Entry {
                key: name.to_owned(),
                tokens,
                origin: Origin::File { path: path.to_owned(), line: line_of(text, key.span().start) },
                needs_other,
            }),
            Err(message) => problems.push(Problem::new(at(value.span().start), format!("{name}: {message}"))),
        }
    }
    if problems.is_empty()
        && let Some(problem) = conflict_within(serve, &entries, path)
    {
        problems.push(problem);
    }
    if problems.is_empty() { Ok(entries) } else { Err(problems) }
}

fn unknown_key(name: &str, serve: &Command) -> String {
    let dashed = name.replace('_', "-");
    if dashed != name && setting(serve, &dashed).is_some() {
        return format!("unknown key `{name}`: did you mean `{dashed}`?");
    }
    format!("unknown key `{name}` (keys are `kvnc serve`'s long option names: see `kvnc serve --help`)")
}

/// A file value as arguments: a switch is `true` or `false`, a list option takes an array (or
/// one value), any other option one string or number.
fn file_tokens(arg: &Arg, name: &str, value: &DeValue<'_>) -> Result<Vec<OsString>, String> {
    if is_switch(arg) {
        return match value {
            DeValue::Boolean(true) => Ok(vec![format!("--{name}").into()]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            _ => Err(format!("a switch: write `{name} = true` or `{name} = false`")),
        };
    }
    let values = match value {
        DeValue::Array(items) if is_list(arg) => {
            items.iter().map(|item| scalar(item.get_ref())).collect::<Result<Vec<_>, _>>()?
        }
        DeValue::Array(_) => return Err("takes one value, not a list".into()),
        other => vec![scalar(other)?],
    };
    Ok(values.iter().map(|value| format!("--{name}={value}").into()).collect())
}

fn scalar(value: &DeValue<'_>) -> Result<String, String> {
    match value {
        DeValue::String(text) => Ok(text.to_string()),
        // Hex, octal and binary integers are given to the option in decimal.
        DeValue::Integer(number) => i128::from_str_radix(number.as_str(), number.radix())
            .map(|number| number.to_string())
            .map_err(|e| format!("{number}: {e}")),
        DeValue::Float(number) => Ok(number.as_str().to_owned()),
        DeValue::Boolean(flag) => Err(format!("takes a value, not `{flag}`")),
        DeValue::Datetime(_) => Err("takes text or a number, not a date".into()),
        DeValue::Array(_) => Err("takes single values, not lists".into()),
        DeValue::Table(_) => Err("takes a value, not a table (the file has no sections)".into()),
    }
}

/// The subcommand alone, for checking arguments without the program name or the environment.
fn alone(serve: &Command) -> Command {
    serve.clone().no_binary_name(true)
}

/// Checks one option's value with its own parser; Ok(true) if the option needs another one.
/// Missing companions (`tls-cert` needs `tls-key`) and conflicts are left to the whole
/// configuration: another layer may supply or hide them.
fn check_alone(serve: &Command, tokens: &[OsString]) -> Result<bool, String> {
    if tokens.is_empty() {
        return Ok(false);
    }
    match alone(serve).try_get_matches_from(tokens) {
        Ok(_) => Ok(false),
        Err(error) if error.kind() == ErrorKind::MissingRequiredArgument => Ok(true),
        Err(error) if error.kind() == ErrorKind::ArgumentConflict => Ok(false),
        Err(error) => Err(clap_message(&error)),
    }
}

/// Two options of the file that cannot be used together, with both lines.
fn conflict_within(serve: &Command, entries: &[Entry], path: &Path) -> Option<Problem> {
    let all: Vec<OsString> = entries.iter().flat_map(|entry| entry.tokens.iter().cloned()).collect();
    let error =
        alone(serve).try_get_matches_from(all).err().filter(|error| error.kind() == ErrorKind::ArgumentConflict)?;
    let named = named_options(&error);
    let mut lines: Vec<usize> = entries
        .iter()
        .filter(|entry| named.contains(&entry.key))
        .filter_map(|entry| match entry.origin {
            Origin::File { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    lines.sort_unstable();
    let first = lines.first()?;
    let all_lines: Vec<String> = lines.iter().map(usize::to_string).collect();
    Some(Problem::new(
        Some(format!("{}:{first}", path.display())),
        format!("{} (lines {})", clap_message(&error), all_lines.join(" and ")),
    ))
}

/// The option names (without `--`) a clap error is about.
fn named_options(error: &clap::Error) -> Vec<String> {
    let mut shown = Vec::new();
    for kind in [ContextKind::InvalidArg, ContextKind::PriorArg] {
        match error.get(kind) {
            Some(ContextValue::String(arg)) => shown.push(arg.clone()),
            Some(ContextValue::Strings(args)) => shown.extend(args.iter().cloned()),
            _ => {}
        }
    }
    // Shown as `--tls-cert <PATH>`.
    shown
        .iter()
        .filter_map(|arg| arg.split_whitespace().next())
        .filter_map(|arg| arg.strip_prefix("--"))
        .map(str::to_owned)
        .collect()
}

/// Clap's message without its `error:` prefix, usage and help hint, on one line.
fn clap_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    let message = lines.join(" ");
    message.strip_prefix("error: ").unwrap_or(&message).to_owned()
}

/// The `KVNC_*` variables of `kvnc serve`'s options. An empty variable counts as unset.
fn from_environment(serve: &Command, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Vec<Entry>, Vec<Problem>> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for arg in settings(serve) {
        let Some(key) = arg.get_long() else { continue };
        let variable = variable(key);
        let Some(value) = env(&variable).filter(|value| !value.is_empty()) else { continue };
        let tokens = match value.to_str() {
            None => Err("not UTF-8".to_owned()),
            Some(text) => env_tokens(arg, key, text)
                .and_then(|tokens| check_alone(serve, &tokens).map(|needs_other| (tokens, needs_other))),
        };
        match tokens {
            Ok((tokens, needs_other)) => {
                entries.push(Entry { key: key.to_owned(), tokens, origin: Origin::Environment(variable), needs_other })
            }
            Err(message) => problems.push(Problem::new(Some(variable), format!("{key}: {message}"))),
        }
    }
    if problems.is_empty() { Ok(entries) } else { Err(problems) }
}

fn env_tokens(arg: &Arg, key: &str, text: &str) -> Result<Vec<OsString>, String> {
    if is_switch(arg) {
        return match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(vec![format!("--{key}").into()]),
            "0" | "false" | "no" | "off" => Ok(Vec::new()),
            _ => Err(format!("{text:?} is not true or false")),
        };
    }
    let values: Vec<&str> = if is_list(arg) {
        text.split(',').map(str::trim).filter(|value| !value.is_empty()).collect()
    } else {
        vec![text]
    };
    Ok(values.iter().map(|value| format!("--{key}={value}").into()).collect())
}

/// The arguments with the added ones before a `--`, if any (nothing after it is an option).
fn insert(mut args: Vec<OsString>, tokens: &[OsString]) -> Vec<OsString> {
    let at = args.iter().skip(1).position(|arg| arg == "--").map_or(args.len(), |index| index + 1);
    args.splice(at..at, tokens.iter().cloned());
    args
}

/// The innermost subcommand's settings that are not at their defaults.
fn provenance(command: &Command, matches: &ArgMatches, layers: &Layers) -> Vec<Setting> {
    let names = subcommand_names(matches);
    let (Some(leaf), Some(leaf_matches)) = (find_leaf(command, &names), levels(matches).last().copied()) else {
        return Vec::new();
    };
    settings(leaf)
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            if leaf_matches.value_source(id) != Some(ValueSource::CommandLine) {
                return None;
            }
            let key = arg.get_long()?.to_owned();
            let origin = layers.origin(&key).cloned().unwrap_or(Origin::CommandLine);
            let values = leaf_matches
                .get_raw(id)
                .map(|values| values.map(|value| value.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            Some(Setting { key, values, origin })
        })
        .collect()
}

/// `kvnc check`: prints the settings and where they come from, then what would keep `kvnc
/// serve` from working with them, as far as can be seen without starting it.
pub fn check(args: &ServeArgs, provenance: &Provenance) -> anyhow::Result<()> {
    match &provenance.file {
        Some(path) => println!("configuration file: {}", path.display()),
        None => println!("configuration file: none"),
    }
    if provenance.settings.is_empty() {
        println!("every option is at its default");
    }
    for setting in &provenance.settings {
        println!("{} = {}    # {}", setting.key, setting.values.join(", "), setting.origin);
    }
    let findings = findings(args);
    for finding in &findings {
        let location = provenance.origin(finding.key).map_or(String::new(), |origin| format!("{origin}: "));
        let severity = if finding.warning { "warning: " } else { "" };
        eprintln!("{severity}{location}{}: {}", finding.key, finding.message);
    }
    let errors = findings.iter().filter(|finding| !finding.warning).count();
    if errors > 0 {
        bail!("{errors} problem{} in the configuration", if errors == 1 { "" } else { "s" });
    }
    println!("configuration OK");
    Ok(())
}

/// Something about one option.
#[derive(Debug)]
struct Finding {
    key: &'static str,
    message: String,
    /// Serve would still start (a capture device can be plugged in later).
    warning: bool,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(Finding { key, message: message.into(), warning: false });
    }

    fn warning(&mut self, key: &'static str, message: impl Into<String>) {
        self.0.push(Finding { key, message: message.into(), warning: true });
    }
}

/// The checks that need no network, no gadget and no state: files are read, nothing is made.
fn findings(args: &ServeArgs) -> Vec<Finding> {
    let mut found = Findings::default();
    let hid_mode = args.hid_mode();
    if let Err(e) = &hid_mode {
        found.error("hid", format!("{e:#}"));
    }
    let login = &args.login;
    for (key, path) in
        [("password-file", &login.password_file), ("view-only-password-file", &login.view_only_password_file)]
    {
        if let Some(path) = path
            && let Err(e) = crate::login::read_password_file(path)
        {
            found.error(key, format!("{e:#}"));
        }
    }
    if let Some(path) = &login.users_file {
        match crate::accounts::Accounts::load(path) {
            Ok(accounts) if accounts.is_empty() => found.error(
                "users-file",
                format!(
                    "{} has no accounts: add one with `kvnc passwd --users {} NAME`",
                    path.display(),
                    path.display()
                ),
            ),
            Ok(_) => {}
            Err(e) => found.error("users-file", format!("{e:#}")),
        }
    }
    // The rule `LoginArgs::load` enforces when serving.
    let has_login =
        login.password_file.is_some() || login.view_only_password_file.is_some() || login.users_file.is_some();
    if !has_login && !args.listen.ip().is_loopback() && !login.no_auth {
        found.error(
            "listen",
            format!(
                "serving {} needs a login: set password-file or users-file, or no-auth = true to let anyone who \
                 reaches it control the target",
                args.listen
            ),
        );
    }
    if let (Some(cert), Some(key)) = (&login.tls_cert, &login.tls_key) {
        let source = crate::server::tls::CertificateSource::Files { cert: cert.clone(), key: key.clone() };
        if let Err(e) = crate::server::tls::TlsIdentity::load(&source) {
            found.error("tls-cert", format!("{e:#}"));
        }
    }
    if let Some(dir) = &login.state_dir
        && dir.exists()
        && !dir.is_dir()
    {
        found.error("state-dir", format!("{} is not a directory", dir.display()));
    }
    if let Some(dir) = &args.media_dir
        && !dir.is_dir()
    {
        found.error("media-dir", format!("{} is not a directory", dir.display()));
    }
    match &args.source {
        SourceSpec::Replay(path) if !path.exists() => {
            found.error("source", format!("{} does not exist", path.display()))
        }
        SourceSpec::V4l2(device) if !device.exists() => found.warning(
            "source",
            format!("{} is not there now: viewers see NO CAPTURE DEVICE until it appears", device.display()),
        ),
        _ => {}
    }
    if let Err(e) = crate::hid::layout::Layout::load(&args.layout) {
        found.error("layout", e.to_string());
    }
    if let Some(HidDevices(devices)) = &args.hid_device {
        for (role, path) in devices {
            if !path.exists() {
                found.warning("hid-device", format!("{} (the {}) does not exist now", path.display(), role.name()));
            }
        }
    }
    if matches!(hid_mode, Ok(HidMode::Gadget))
        && args.hid_device.is_none()
        && !Path::new("/sys/kernel/config/usb_gadget").is_dir()
    {
        found.warning(
            "hid",
            "no /sys/kernel/config/usb_gadget on this machine (configfs not mounted, or libcomposite not loaded): \
             serve cannot set up the gadget here",
        );
    }
    found.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cli::{Command as Sub, GadgetAction};

    /// A file of its own per call (tests run in parallel), removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!("kvnc-config-{}-{}.toml", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `kvnc ARGS` with `file` as the default file (if given) and `env` as the whole environment.
    fn run(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> Result<Cli, Failure> {
        let file = file.map(TempFile::new);
        let default = file.as_ref().map_or_else(|| PathBuf::from("/nonexistent/kvnc.toml"), |file| file.0.clone());
        let env: BTreeMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        let mut argv = vec![OsString::from("kvnc")];
        argv.extend(args.iter().map(OsString::from));
        parse_from(argv, &|name| env.get(name).cloned(), &default)
    }

    fn serve(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> (ServeArgs, Provenance) {
        let mut full = vec!["serve"];
        full.extend_from_slice(args);
        match run(&full, env, file) {
            Ok(Cli { command: Sub::Serve(args), provenance, .. }) => (*args, provenance),
            Ok(other) => panic!("not serve: {other:?}"),
            Err(failure) => panic!("{failure}"),
        }
    }

    /// The problems of a configuration that must not parse, as `LINE: message` (file) or
    /// `VARIABLE: message` without the file's path.
    fn problems(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> Vec<String> {
        let mut full = vec!["serve"];
        full.extend_from_slice(args);
        match run(&full, env, file) {
            Err(Failure::Config(problems)) => problems
                .iter()
                .map(|problem| {
                    let location = problem.location.clone().unwrap_or_default();
                    let short = location.rsplit_once(':').map_or(location.as_str(), |(_, line)| line);
                    format!("{short}: {}", problem.message)
                })
                .collect(),
            Err(other) => panic!("not a configuration problem: {other}"),
            Ok(cli) => panic!("parsed: {cli:?}"),
        }
    }

    #[test]
    fn command_line_then_environment_then_file_then_default() {
        let file = "listen = \"127.0.0.2:5901\"\nname = \"file\"\nlayout = \"de\"\n";
        let (args, _) = serve(&[], &[], None);
        assert_eq!((args.listen.to_string(), args.name.as_str()), ("127.0.0.1:5900".into(), "kvnc"));
        let (args, _) = serve(&[], &[], Some(file));
        assert_eq!(
            (args.listen.to_string(), args.name.as_str(), args.layout.as_str()),
            ("127.0.0.2:5901".into(), "file", "de")
        );
        let env = [("KVNC_NAME", "env"), ("KVNC_LISTEN", "127.0.0.3:5902")];
        let (args, provenance) = serve(&[], &env, Some(file));
        assert_eq!(
            (args.listen.to_string(), args.name.as_str(), args.layout.as_str()),
            ("127.0.0.3:5902".into(), "env", "de")
        );
        assert_eq!(provenance.origin("name"), Some(&Origin::Environment("KVNC_NAME".into())));
        assert!(matches!(provenance.origin("layout"), Some(Origin::File { line: 3, .. })), "{provenance:?}");
        let (args, provenance) = serve(&["--name", "flag"], &env, Some(file));
        assert_eq!((args.listen.to_string(), args.name.as_str()), ("127.0.0.3:5902".into(), "flag"));
        assert_eq!(provenance.origin("name"), Some(&Origin::CommandLine));
        assert_eq!(provenance.origin("fps"), None, "defaults are not settings");
    }

    #[test]
    fn the_file_can_be_named_on_the_command_line_or_in_the_environment() {
        let file = TempFile::new("name = \"named\"\n");
        let path = file.0.to_str().unwrap();
        for (args, env) in [
            (vec!["--config", path, "serve"], vec![]),
            (vec!["serve", "--config", path], vec![]),
            (vec!["serve"], vec![(PATH_VARIABLE, path)]),
        ] {
            let cli = run(&args, &env, None).unwrap_or_else(|failure| panic!("{args:?}: {failure}"));
            let Sub::Serve(serve) = cli.command else { panic!("not serve") };
            assert_eq!(serve.name, "named", "{args:?} {env:?}");
            assert_eq!(cli.provenance.file.as_deref(), Some(file.0.as_path()));
        }
        let missing = run(&["--config", "/nonexistent/kvnc.toml", "serve"], &[], None);
        assert!(matches!(missing, Err(Failure::Config(_))), "{missing:?}");
    }

    #[test]
    fn lists_are_arrays_in_the_file_and_commas_in_the_environment() {
        let file = "ws-allowed-origin = [\"https://a\", \"https://b\"]\n";
        assert_eq!(serve(&[], &[], Some(file)).0.ws_allowed_origin, ["https://a", "https://b"]);
        assert_eq!(serve(&[], &[], Some("ws-allowed-origin = \"https://one\"")).0.ws_allowed_origin, ["https://one"]);
        let env = [("KVNC_WS_ALLOWED_ORIGIN", "https://c, https://d")];
        assert_eq!(serve(&[], &env, Some(file)).0.ws_allowed_origin, ["https://c", "https://d"]);
        // A list given on the command line replaces the others rather than adding to them.
        assert_eq!(serve(&["--ws-allowed-origin", "https://e"], &env, Some(file)).0.ws_allowed_origin, ["https://e"]);
        assert_eq!(
            problems(&[], &[], Some("\n\nlisten = [\"127.0.0.1:1\"]")),
            ["3: listen: takes one value, not a list"]
        );
    }

    #[test]
    fn switches_are_booleans() {
        let (args, provenance) = serve(&[], &[], Some("no-auth = true\nrequire-tls = false\n"));
        assert!(args.login.no_auth && !args.login.require_tls);
        assert_eq!(provenance.settings.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["no-auth"]);
        // A variable can turn a switch the file sets back off.
        assert!(!serve(&[], &[("KVNC_NO_AUTH", "false")], Some("no-auth = true")).0.login.no_auth);
        assert!(serve(&[], &[("KVNC_NO_AUTH", "yes")], None).0.login.no_auth);
        assert!(serve(&[], &[("KVNC_NO_AUTH", "")], Some("no-auth = true")).0.login.no_auth, "empty is unset");
        assert_eq!(
            problems(&[], &[], Some("no-auth = \"yes\"")),
            ["1: no-auth: a switch: write `no-auth = true` or `no-auth = false`"]
        );
        assert_eq!(
            problems(&[], &[("KVNC_REQUIRE_TLS", "maybe")], None),
            ["KVNC_REQUIRE_TLS: require-tls: \"maybe\" is not true or false"]
        );
        assert_eq!(problems(&[], &[], Some("name = true")), ["1: name: takes a value, not `true`"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_lines() {
        let file = "# kvnc\nlisten = \"nowhere\"\n\nlistn = \"127.0.0.1:1\"\npassword_file = \"/p\"\nhid = \"usb\"\nfps = 1000\n";
        let found = problems(&[], &[], Some(file));
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].starts_with("2: listen: invalid value 'nowhere' for '--listen <LISTEN>'"), "{found:?}");
        assert!(found[1].starts_with("4: unknown key `listn`"), "{found:?}");
        assert_eq!(found[2], "5: unknown key `password_file`: did you mean `password-file`?");
        assert!(found[3].starts_with("6: hid: invalid value 'usb'") && found[3].contains("gadget"), "{found:?}");
        assert!(found[4].starts_with("7: fps: invalid value '1000'"), "{found:?}");
        // Not TOML at all: the parser's own message, at its line.
        let found = problems(&[], &[], Some("name = \"a\"\nlisten = 127.0.0.1:5900\n"));
        assert!(
            !found.is_empty() && found.iter().all(|problem| problem.starts_with("2: not valid TOML: ")),
            "{found:?}"
        );
        assert_eq!(
            problems(&[], &[], Some("[login]\nno-auth = true\n"))[0],
            "1: unknown key `login` (keys are `kvnc serve`'s long option names: see `kvnc serve --help`)"
        );
        // The file is wrong even where the command line overrides it.
        assert_eq!(problems(&["--listen", "127.0.0.1:1"], &[], Some("listen = 5")).len(), 1);
        let found = problems(&[], &[("KVNC_LISTEN", "nowhere"), ("KVNC_VNCDO", "not an option")], None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("KVNC_LISTEN: listen: invalid value 'nowhere'"), "{found:?}");
    }

    #[test]
    fn numbers_may_be_written_as_toml_integers() {
        let (args, _) =
            serve(&[], &[], Some("usb-vendor-id = 0x1209\nusb-product-id = \"0x0001\"\nmax-cut-text = 1_000\n"));
        assert_eq!((args.gadget.usb_vendor_id, args.gadget.usb_product_id, args.max_cut_text), (0x1209, 1, 1000));
    }

    #[test]
    fn conflicts_within_the_file_name_both_lines_and_the_command_line_hides_what_it_conflicts_with() {
        assert_eq!(
            problems(&[], &[], Some("no-tls = true\nname = \"x\"\nrequire-tls = true\n")),
            ["1: the argument '--no-tls' cannot be used with '--require-tls' (lines 1 and 3)"]
        );
        let (args, _) = serve(&["--control-socket", "/run/x.sock"], &[], Some("no-control-socket = true\n"));
        assert_eq!((args.control_socket.as_deref(), args.no_control_socket), (Some(Path::new("/run/x.sock")), false));
        let (args, _) = serve(&[], &[("KVNC_NO_CONTROL_SOCKET", "true")], Some("control-socket = \"/run/y.sock\"\n"));
        assert_eq!((args.control_socket, args.no_control_socket), (None, true));
    }

    #[test]
    fn options_that_need_each_other_may_come_from_different_places() {
        let (args, _) = serve(&["--tls-cert", "/c.pem"], &[], Some("tls-key = \"/k.pem\"\n"));
        assert_eq!(
            (args.login.tls_cert.as_deref(), args.login.tls_key.as_deref()),
            (Some(Path::new("/c.pem")), Some(Path::new("/k.pem")))
        );
        // Missing from every source: clap's error, with a note on where the other one was set.
        match run(&["serve"], &[], Some("\ntls-cert = \"/c.pem\"\n")) {
            Err(Failure::Clap { error, note }) => {
                assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
                let note = note.unwrap();
                assert!(note.starts_with("note: tls-cert is set in ") && note.ends_with(".toml:2"), "{note}");
            }
            other => panic!("{other:?}"),
        }
        match run(&["serve", "--require-tls"], &[("KVNC_NO_TLS", "1")], None) {
            Ok(Cli { command: Sub::Serve(args), .. }) => assert!(args.login.require_tls && !args.login.no_tls),
            other => panic!("{other:?}"),
        }
        match run(&["serve", "--no-rsa-aes"], &[("KVNC_NO_TLS", "1"), ("KVNC_REQUIRE_TLS", "1")], None) {
            Err(Failure::Clap { error, note }) => {
                assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
                assert_eq!(
                    note.as_deref(),
                    Some("note: no-tls is set in KVNC_NO_TLS; require-tls is set in KVNC_REQUIRE_TLS")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gadget_and_media_commands_share_the_options_they_have() {
        let file =
            "usb-vendor-id = \"0x1209\"\ngadget-name = \"kvm\"\nmedia-dir = \"/srv/images\"\nlisten = \"0.0.0.0:1\"\n";
        match run(&["gadget", "up"], &[], Some(file)) {
            Ok(Cli { command: Sub::Gadget { action: GadgetAction::Up(gadget) }, .. }) => {
                assert_eq!((gadget.usb_vendor_id, gadget.gadget_name.as_str()), (0x1209, "kvm"))
            }
            other => panic!("{other:?}"),
        }
        match run(&["gadget", "down"], &[("KVNC_GADGET_NAME", "other")], Some(file)) {
            Ok(Cli { command: Sub::Gadget { action: GadgetAction::Down { gadget_name } }, .. }) => {
                assert_eq!(gadget_name, "other")
            }
            other => panic!("{other:?}"),
        }
        match run(&["media", "list"], &[], Some(file)) {
            Ok(Cli { command: Sub::Media(media), .. }) => {
                assert_eq!(
                    (media.media_dir.as_deref(), media.gadget_name.as_str()),
                    (Some(Path::new("/srv/images")), "kvm")
                )
            }
            other => panic!("{other:?}"),
        }
        // A global option given before the innermost subcommand still wins over the file.
        match run(&["media", "--media-dir", "/mnt/iso", "list"], &[], Some(file)) {
            Ok(Cli { command: Sub::Media(media), .. }) => {
                assert_eq!(media.media_dir.as_deref(), Some(Path::new("/mnt/iso")))
            }
            other => panic!("{other:?}"),
        }
        // Other commands do not read the file at all, broken or not.
        assert!(run(&["passwd", "--vnc", "/tmp/p", "--stdin"], &[], Some("broken = [")).is_ok());
    }

    #[test]
    fn check_is_serve_with_a_report() {
        let (file, _) = (TempFile::new("listen = \"0.0.0.0:5900\"\n"), ());
        let path = file.0.to_str().unwrap();
        let Ok(Cli { command: Sub::Check(args), provenance, .. }) = run(&["--config", path, "check"], &[], None) else {
            panic!("check did not parse")
        };
        let found = findings(&args);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "listen");
        assert_eq!(provenance.origin("listen"), Some(&Origin::File { path: file.0.clone(), line: 1 }));
        let media = TempFile::new("");
        let args = serve(
            &["--media-dir", media.0.to_str().unwrap(), "--source", "replay:/nonexistent", "--layout", "us"],
            &[],
            None,
        )
        .0;
        let keys: Vec<&str> = findings(&args).iter().map(|finding| finding.key).collect();
        assert_eq!(keys, ["media-dir", "source"]);
        assert!(findings(&serve(&[], &[], None).0).is_empty(), "the defaults are fine");
    }

    /// Every option of `kvnc serve` is in packaging/kvnc.toml as a commented-out `#key = value`
    /// line; where the option has a default, the line shows exactly that, and every line is a
    /// valid setting when uncommented.
    #[test]
    fn the_packaged_file_documents_every_option_with_its_default() {
        const PACKAGED: &str = include_str!("../packaging/kvnc.toml");
        let mut command = Cli::command();
        command.build();
        let serve = command.find_subcommand("serve").unwrap();
        let path = Path::new("packaging/kvnc.toml");
        assert!(parse_file(PACKAGED, path, serve).unwrap().is_empty(), "everything is commented out");
        let mut documented = BTreeMap::new();
        for (index, line) in PACKAGED.lines().enumerate() {
            let Some(setting) =
                line.strip_prefix('#').filter(|rest| rest.starts_with(|c: char| c.is_ascii_lowercase()))
            else {
                continue;
            };
            let entries = parse_file(setting, path, serve).unwrap_or_else(|e| panic!("line {}: {e:?}", index + 1));
            let [entry] = entries.as_slice() else { panic!("line {}: one setting per line", index + 1) };
            assert!(documented.insert(entry.key.clone(), entry.tokens.clone()).is_none(), "{} twice", entry.key);
        }
        for arg in settings(serve) {
            let key = arg.get_long().unwrap();
            let tokens = documented.get(key).unwrap_or_else(|| panic!("packaging/kvnc.toml does not document {key}"));
            let defaults = arg.get_default_values();
            if is_switch(arg) {
                assert!(tokens.is_empty(), "{key}: the file must show the default, false");
            } else if !defaults.is_empty() {
                let expected: Vec<OsString> =
                    defaults.iter().map(|value| format!("--{key}={}", value.to_string_lossy()).into()).collect();
                assert_eq!(tokens, &expected, "{key}: the file must show the default");
            }
        }
        assert_eq!(documented.len(), settings(serve).count(), "documented options that serve does not have");
    }

    #[test]
    fn variables_are_named_after_options() {
        assert_eq!(variable("password-file"), "KVNC_PASSWORD_FILE");
        assert_eq!(variable("listen"), "KVNC_LISTEN");
    }
}
