//! The export as Node.js teams read it, checked with their real tools (pinned in
//! `tests/node/package.json`):
//!
//! - `schemas/json/asyncapi.json` passes `@asyncapi/parser`'s validation (no diagnostic of
//!   severity error);
//! - `schemas/json/typescript/index.d.ts` and the NestJS-style consumer in
//!   `tests/node/ts-consumer/` compile with `tsc --strict`, and `typescript/index.js` gives the
//!   enum's values at run time from CommonJS and from ES modules;
//! - the same holds for the export of the codegen fixture, which has what the platform catalog
//!   lacks (older versions, a deprecated event, named object types, maps, floats);
//! - and the tools do reject broken documents and consumers, so these tests can fail.
//!
//! They need Node.js 20+ and `npm ci --prefix tests/node` (`cargo xtask test` runs it when
//! `tests/node/node_modules` is missing or older than the lock file). Without them the tests fail
//! with that instruction; they are never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use domain_events_schema::{Catalog, ExportSettings, export};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn node_dir() -> PathBuf {
    workspace().join("tests/node")
}

const INSTALL: &str = "run `npm ci --prefix tests/node` in the workspace root (Node.js 20 or newer \
                       must be installed); `cargo xtask test` does it for you";

/// `tests/node/node_modules`, after checking that `npm ci` has run.
fn node_modules() -> PathBuf {
    let dir = node_dir().join("node_modules");
    for package in ["typescript/bin/tsc", "@asyncapi/parser/package.json"] {
        assert!(
            dir.join(package).is_file(),
            "{} is missing: {INSTALL}",
            dir.join(package).display()
        );
    }
    dir
}

/// Runs `node args...` in the workspace root.
fn node<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    Command::new("node")
        .args(&args)
        .current_dir(workspace())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node {args:?}`: {e}; {INSTALL}"))
}

fn text(output: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `node tests/node/validate-asyncapi.mjs <file>`.
fn validate_asyncapi(file: &Path) -> Output {
    node_modules();
    node([
        node_dir().join("validate-asyncapi.mjs").as_os_str(),
        file.as_os_str(),
    ])
}

/// `tsc -p <tsconfig>` with the pinned TypeScript.
fn tsc(tsconfig: &Path) -> Output {
    let tsc = node_modules().join("typescript/bin/tsc");
    node([tsc.as_os_str(), "-p".as_ref(), tsconfig.as_os_str()])
}

/// A tsconfig in `dir` with the options of `tests/node/tsconfig.json` over `files`.
fn write_tsconfig(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(node_dir().join("tsconfig.json"))
            .expect("tests/node/tsconfig.json"),
    )
    .expect("tests/node/tsconfig.json is JSON");
    let config = serde_json::json!({
        "compilerOptions": committed["compilerOptions"],
        "files": files,
    });
    let path = dir.join("tsconfig.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn committed_export() -> PathBuf {
    let dir = workspace().join("schemas/json");
    assert!(
        dir.join("asyncapi.json").is_file(),
        "schemas/json/asyncapi.json is missing: run `cargo xtask schema export`"
    );
    dir
}

/// The export of the codegen fixture (`crates/domain-events-schema/tests/fixtures/good`),
/// written into a temporary folder.
fn fixture_export() -> tempfile::TempDir {
    let schemas = workspace().join("crates/domain-events-schema/tests/fixtures/good");
    let catalog = Catalog::load(&schemas).unwrap_or_else(|d| panic!("{d}"));
    let dir = tempfile::tempdir().unwrap();
    export::write(&catalog, &ExportSettings::new(), &dir.path().join("export")).unwrap();
    dir
}

#[test]
fn asyncapi_export_is_valid_asyncapi_3() {
    let file = committed_export().join("asyncapi.json");
    let output = validate_asyncapi(&file);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("valid AsyncAPI"),
        "{}",
        text(&output)
    );
}

#[test]
fn typescript_consumer_compiles_under_strict() {
    committed_export();
    let output = tsc(&node_dir().join("tsconfig.json"));
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn the_enum_exists_at_run_time_for_commonjs_and_es_modules() {
    let dir = committed_export().join("typescript");
    let cjs = format!(
        "const {{ DomainEventType }} = require({});\
         if (DomainEventType.IMAGE_VARIATION_COMPLETED !== 'image:variation_completed') process.exit(1);\
         console.log(Object.keys(DomainEventType).length);",
        serde_json::to_string(&dir).unwrap()
    );
    let output = node(["-e", &cjs]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "30");

    let url = format!("file://{}", dir.join("index.js").display());
    let esm = format!(
        "import {{ DomainEventType }} from {};\
         if (DomainEventType.FUNNEL_VISIT !== 'funnel:visit') process.exit(1);\
         if (!Object.isFrozen(DomainEventType)) process.exit(2);",
        serde_json::to_string(&url).unwrap()
    );
    let output = node(["--input-type=module", "-e", &esm]);
    assert!(output.status.success(), "{}", text(&output));
}

/// Uses what the platform catalog does not have: an older version, a deprecated event, named
/// object and enum types, an inline enum, lists of objects, maps, floats, optional fields.
const FIXTURE_CONSUMER: &str = r#"
import {
  DomainEventType,
  type Customer,
  type DomainEvent,
  type Reason,
  type ShopOrderPlacedEvent,
  type ShopOrderPlacedV1Event,
  type Tier,
} from './export/typescript/index.js';

function v1(event: ShopOrderPlacedV1Event): string {
  return `${event.payload.orderId}: ${event.payload.totalCents}`;
}

function v2(event: ShopOrderPlacedEvent): string {
  const customer: Customer = event.payload.customer;
  const tier: Tier | undefined = customer.loyalty;
  const channel: 'web' | 'mobile-app' | '2fa' = event.payload.channel;
  const discount: number | undefined = event.payload.discount;
  const attributes: Record<string, string> | undefined = event.payload.attributes;
  const skus = event.payload.lines.map((line) => `${line.sku} x ${line.quantity}`);
  const version: 2 = event.version;
  return [channel, tier ?? '-', discount ?? 0, Object.keys(attributes ?? {}).length, version, ...skus].join(' ');
}

export function describe(event: DomainEvent): string {
  switch (event.type) {
    case DomainEventType.SHOP_ORDER_PLACED:
      return event.version === 1 ? v1(event) : v2(event);
    case DomainEventType.SHOP_ORDER_CANCELLED: {
      const reason: Reason = event.payload.reason;
      return reason;
    }
    default: {
      const unhandled: never = event;
      return unhandled;
    }
  }
}
"#;

#[test]
fn fixture_export_is_valid_for_node_tools() {
    let dir = fixture_export();
    let export = dir.path().join("export");

    let output = validate_asyncapi(&export.join("asyncapi.json"));
    assert!(output.status.success(), "{}", text(&output));

    let consumer = dir.path().join("consumer.ts");
    std::fs::write(&consumer, FIXTURE_CONSUMER).unwrap();
    let tsconfig = write_tsconfig(
        dir.path(),
        &[export.join("typescript/index.d.ts"), consumer],
    );
    let output = tsc(&tsconfig);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn tsc_rejects_a_consumer_that_misses_an_event_type() {
    let export = committed_export();
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(node_dir().join("ts-consumer/consumer.ts")).unwrap();
    let missing = "      case DomainEventType.SYSTEM_ALERT_RESOLVED:\n";
    assert!(source.contains(missing), "the consumer handles every event");
    let broken = source.replace(missing, "").replace(
        "'../../../schemas/json/typescript/index.js'",
        &format!("'{}'", export.join("typescript/index.js").display()),
    );
    let consumer = dir.path().join("consumer.ts");
    std::fs::write(&consumer, broken).unwrap();
    let tsconfig = write_tsconfig(
        dir.path(),
        &[export.join("typescript/index.d.ts"), consumer],
    );
    let output = tsc(&tsconfig);
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("error TS2345"), "{shown}");
    assert!(shown.contains("SystemAlertResolvedEvent"), "{shown}");
}

#[test]
fn tsc_rejects_declarations_that_break_the_consumer() {
    let export = committed_export();
    let dir = tempfile::tempdir().unwrap();
    let declarations = std::fs::read_to_string(export.join("typescript/index.d.ts")).unwrap();
    assert!(declarations.contains("  publicUrls: string[];\n"));
    std::fs::create_dir(dir.path().join("typescript")).unwrap();
    for file in ["index.js", "package.json"] {
        std::fs::copy(
            export.join("typescript").join(file),
            dir.path().join("typescript").join(file),
        )
        .unwrap();
    }
    let broken_dts = dir.path().join("typescript/index.d.ts");
    std::fs::write(
        &broken_dts,
        declarations.replace("  publicUrls: string[];\n", "  publicUrls: string;\n"),
    )
    .unwrap();
    let source = std::fs::read_to_string(node_dir().join("ts-consumer/consumer.ts")).unwrap();
    let consumer = dir.path().join("consumer.ts");
    std::fs::write(
        &consumer,
        source.replace(
            "'../../../schemas/json/typescript/index.js'",
            "'./typescript/index.js'",
        ),
    )
    .unwrap();
    let output = tsc(&write_tsconfig(dir.path(), &[broken_dts, consumer]));
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("error TS2322"), "{shown}");
}

#[test]
fn the_asyncapi_validator_rejects_broken_documents() {
    let file = committed_export().join("asyncapi.json");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    type Break = fn(&mut serde_json::Value);
    let cases: [(&str, Break, &str); 3] = [
        (
            "missing-info",
            |d| {
                d.as_object_mut().unwrap().remove("info");
            },
            "must have required property \"info\"",
        ),
        (
            "foreign-message",
            |d| {
                d["operations"]["image.send"]["messages"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"$ref": "#/channels/email/messages/EmailSent"}));
            },
            "asyncapi3-operation-messages-from-referred-channel",
        ),
        (
            "bad-payload-schema",
            |d| {
                d["components"]["messages"]["ImageVariationCompleted"]["payload"]["properties"]["version"] =
                    serde_json::json!({"type": 42});
            },
            "\"type\" property must be equal to one of the allowed values",
        ),
    ];
    for (name, break_it, expected) in cases {
        let mut broken = document.clone();
        break_it(&mut broken);
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
        let output = validate_asyncapi(&path);
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {shown}");
        assert!(shown.contains(expected), "{name}: {shown}");
    }
}
