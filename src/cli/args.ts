/**
 * The flags of `deno task send` (contract section 4c), parsed strictly: an
 * unknown flag, a missing value or a repeated single flag is a
 * {@linkcode UsageError} naming the flag.
 *
 * @module
 */

/**
 * Bad arguments or configuration: exit status 2, the message names the flag or variable.
 *
 * @example
 * ```ts
 * throw new UsageError("Missing --to: give the recipient's address.");
 * ```
 */
export class UsageError extends Error {
  /** Creates the error; `message` names the flag or variable and says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The parsed command line.
 *
 * @example
 * ```ts
 * const args: SendArgs = parseSendArgs(["--to", "a@example.org", "--subject", "Hi", "--text", "x"]);
 * ```
 */
export interface SendArgs {
  /** `--to`, one entry per flag (each may be a comma list). */
  to: string[];
  /** `--cc`. */
  cc: string[];
  /** `--bcc`. */
  bcc: string[];
  /** `--from`. */
  from?: string;
  /** `--subject`. */
  subject?: string;
  /** `--text`. */
  text?: string;
  /** `--text-file`. */
  textFile?: string;
  /** `--html-file`. */
  htmlFile?: string;
  /** `--attach`, file paths. */
  attach: string[];
  /** `--header "Name: value"`, as given. */
  header: string[];
  /** `--stream`. */
  stream: boolean;
  /** `--json`. */
  json: boolean;
  /** `--endpoint`. */
  endpoint?: string;
  /** `--api-key`. */
  apiKey?: string;
  /** `--help` / `-h`. */
  help: boolean;
}

type ValueFlag = "from" | "subject" | "text" | "textFile" | "htmlFile" | "endpoint" | "apiKey";
type ListFlag = "to" | "cc" | "bcc" | "attach" | "header";
type BooleanFlag = "stream" | "json" | "help";

const VALUE_FLAGS: Record<string, ValueFlag> = {
  "--from": "from",
  "--subject": "subject",
  "--text": "text",
  "--text-file": "textFile",
  "--html-file": "htmlFile",
  "--endpoint": "endpoint",
  "--api-key": "apiKey",
};
const LIST_FLAGS: Record<string, ListFlag> = {
  "--to": "to",
  "--cc": "cc",
  "--bcc": "bcc",
  "--attach": "attach",
  "--header": "header",
};
const BOOLEAN_FLAGS: Record<string, BooleanFlag> = {
  "--stream": "stream",
  "--json": "json",
  "--help": "help",
  "-h": "help",
};

/**
 * The text of `--help`: every flag.
 *
 * @example
 * ```ts
 * console.log(USAGE);
 * ```
 */
export const USAGE = `Send one email over SMTP, or through a running edgemail function.

Usage:
  deno task send --to ADDRESS --subject TEXT --text TEXT [flags]

Message:
  --to ADDRESS         Recipient (repeatable; a comma list is fine). Required.
  --cc ADDRESS         Copy recipient (repeatable).
  --bcc ADDRESS        Blind copy recipient (repeatable; envelope only).
  --from ADDRESS       Sender, "Name <a@b.c>" or a@b.c. Default: MAIL_FROM.
  --subject TEXT       Subject. Required.
  --text TEXT          Plain text body.
  --text-file FILE     Plain text body from a UTF-8 file (instead of --text).
  --html-file FILE     HTML body from a UTF-8 file.
  --attach FILE        Attach a file (repeatable); type guessed from its extension.
  --header "X-A: b"    Extra header field (repeatable).
  A body is required: --text, --text-file, --html-file or --attach.

Output:
  --stream             Print each protocol step as it happens (to stderr with --json).
  --json               Print the Result as JSON on stdout.

Delivery:
  (default)            SMTP with SMTP_URL, or SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASS,
                       SMTP_TLS, SMTP_CA_CERT, SMTP_AUTH, SMTP_NAME, SMTP_TIMEOUT_MS;
                       MAIL_FROM is the default sender.
  --endpoint URL       POST to a running edgemail function at URL instead.
  --api-key KEY        Its API key (Authorization: Bearer KEY).

  -h, --help           Show this help.

Exit status: 0 sent; 1 failed or cancelled (Ctrl-C cancels); 2 bad arguments or configuration.
`;

/**
 * Parses the command line of `deno task send`.
 *
 * @example
 * ```ts
 * const args = parseSendArgs(["--to", "bob@example.org", "--subject", "Hi", "--text", "Hello"]);
 * args.to; // ["bob@example.org"]
 * ```
 * @throws {UsageError} naming the flag, for unknown flags, missing values, repeated single
 * flags, stray arguments and missing required flags.
 */
export function parseSendArgs(argv: readonly string[]): SendArgs {
  const args: SendArgs = {
    to: [],
    cc: [],
    bcc: [],
    attach: [],
    header: [],
    stream: false,
    json: false,
    help: false,
  };
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index];
    const equals = word.startsWith("--") ? word.indexOf("=") : -1;
    const flag = equals === -1 ? word : word.slice(0, equals);
    const inline = equals === -1 ? undefined : word.slice(equals + 1);
    if (flag in BOOLEAN_FLAGS) {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value.`);
      args[BOOLEAN_FLAGS[flag]] = true;
      continue;
    }
    if (!(flag in VALUE_FLAGS) && !(flag in LIST_FLAGS)) {
      throw new UsageError(
        flag.startsWith("-")
          ? `Unknown flag ${flag}; see --help for the flags.`
          : `Unexpected argument "${word}": values follow their flag (--subject "two words").`,
      );
    }
    const value = inline ?? argv[++index];
    if (value === undefined || (inline === undefined && /^--[a-z]/.test(value))) {
      throw new UsageError(`${flag} needs a value.`);
    }
    if (flag in LIST_FLAGS) {
      args[LIST_FLAGS[flag]].push(value);
    } else {
      const key = VALUE_FLAGS[flag];
      if (args[key] !== undefined) throw new UsageError(`${flag} is given twice; give it once.`);
      args[key] = value;
    }
  }
  if (!args.help) checkRequired(args);
  return args;
}

function checkRequired(args: SendArgs): void {
  if (args.to.length === 0) throw new UsageError("Missing --to: give the recipient's address.");
  if (args.subject === undefined) throw new UsageError("Missing --subject.");
  if (args.text !== undefined && args.textFile !== undefined) {
    throw new UsageError("--text and --text-file are both given: use one of them.");
  }
  if (
    args.text === undefined && args.textFile === undefined && args.htmlFile === undefined &&
    args.attach.length === 0
  ) {
    throw new UsageError("Missing body: give --text, --text-file, --html-file or --attach.");
  }
  if (args.apiKey !== undefined && args.endpoint === undefined) {
    throw new UsageError("--api-key only applies with --endpoint.");
  }
  if (args.endpoint !== undefined && !/^https?:\/\/[^/]/i.test(args.endpoint)) {
    throw new UsageError("--endpoint must be an http:// or https:// URL of the function.");
  }
}
