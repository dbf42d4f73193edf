import { BROKER_URL_FORMS } from "./broker-url";

const URLS = BROKER_URL_FORMS.map((form) => `  ${form}`).join("\n");

export const MAIN_HELP = `stream: send and receive files of any size through a message broker, chunked and verified.

Usage:
  stream demo [--size 256MiB] [--json]                  try it with no broker (in-process transport)
  stream send <file|-> --broker <url> --dest <name>     send a file (- reads standard input)
  stream receive --broker <url> --dest <name> [--out <dir>|-] [--once]
                                                        receive streams into a folder until stopped
  stream ls [--json]                                    unfinished transfers (a send or receive that failed or was killed)
  stream resume <id> [--broker <url>]                   continue one from where the partial file ends
  stream keygen [--id <keyId>]                          a new key for --e2e-key (end-to-end encryption)
  stream <command> --help                               the options of one command

Broker URLs:
${URLS}
  Credentials come from the URL or from STREAM_BROKER_USER / STREAM_BROKER_PASSWORD; they are never printed.

TLS (send, receive, resume; with a TLS scheme):
  --ca <file>               the CA certificate (PEM) the broker's certificate must chain to
                            (default: the CAs Node trusts); its name must match the URL's host
  --cert <file>, --cert-key <file>   a client certificate and its key (PEM), for mutual TLS
  --insecure-skip-verify    UNSAFE: accept any broker certificate (a test broker only)

Exit codes: 0 ok, 1 other failure, 2 usage, 3 broker unreachable, 4 authentication failed,
  5 integrity mismatch, 6 destination missing / no receiver, 7 stream aborted, 8 adapter not installed,
  9 unsafe stream name, 10 source changed (resume), 11 TLS certificate refused, 130 interrupted.
`;

export const SEND_HELP = `Usage: stream send <file|-> --broker <url> --dest <name> [options]

Streams one file (or standard input, with -) to a destination. Exits 0 once a receiver has
verified the whole stream (SHA-256); start \`stream receive\` first, or within --timeout.

Options:
  --broker <url>        the broker (see \`stream --help\` for URL forms; --ca, --cert, --cert-key for TLS)
  --dest <name>         queue / topic name: 1-180 of A-Z a-z 0-9 . _ -
  --name <name>         the name receivers see (default: the file's name; "stdin" for -)
  --chunk-bytes <size>  payload bytes per message, e.g. 256KiB (default: the broker's largest, at most 1 MiB)
  --window <n>          messages in flight before waiting for acknowledgements
                        (default: 16 MiB of chunks, at least 4)
  --timeout <seconds>   give up after this long without a word from a receiver (default 120)
  --expire <duration>   the broker drops the file's messages nobody took after this long, e.g.
                        30m, 2h, 7d (RabbitMQ, ActiveMQ, MQTT 5; not Kafka); a receiver refuses
                        it once expired, and the send fails if not delivered by then (default: never)
  --transactional       the receiver sees the file only once all of it has arrived and been
                        verified (it spools it first); by default it writes while this sends
  --push                the default, named: store-and-forward, the chunks go out through
                        the broker at once, paced by the receiver's acknowledgements
  --pull                announce the file and send it only when a receiver reads or saves it
  --e2e-key <file>      encrypt end to end with the first key of this file (\`stream keygen\`
                        writes one; default: $STREAM_E2E_KEY if set): neither the broker nor
                        anyone reading it sees the content, the name or the size
  --compress [algo]     compress each chunk: zstd (Node 22.15+; what a bare --compress, last or
                        before another option, means), brotli or deflate; chunks that do not
                        shrink go as they are. Receivers need nothing: the manifest says how
  --json                print one JSON event per line on stdout (start, progress, done, error)
  -h, --help            this help
`;

export const RECEIVE_HELP = `Usage: stream receive --broker <url> --dest <name> [--out <dir>|-] [--once] [options]

Receives the streams sent to a destination, one file each, until stopped (Ctrl-C / SIGTERM
close cleanly and exit 0), or after the first with --once. A file is written under a temporary
name and renamed to the sender's name (made safe) only once its SHA-256 matched; an existing
file is never overwritten: "name (1).ext" and so on are used instead. A name that would leave
the folder ("..", an absolute path, a drive) is refused and its sender told (exit 9 with --once).
Streams are taken one at a time (--concurrency for more); the others wait queued, in order.
A receiver that dies mid-file leaves its temporary file: the next receiver on the same --out
continues it when the sender hands the stream on, and removes such files once their sender would
have given up (10 min), unless --keep-partial.

Options:
  --broker <url>    the broker (see \`stream --help\` for URL forms)
  --dest <name>     queue / topic name: 1-180 of A-Z a-z 0-9 . _ -
  --out <dir>|-     the folder to write into (default: the current folder; created if missing).
                    - writes one stream to standard output (implies --once); its bytes are only
                    good if the command exits 0
  --once            exit after the first stream, with its outcome as the exit code (a stream
                    its sender had already withdrawn is discarded and does not count)
  --concurrency <n> streams taken at once (default 1): others wait in order, their senders told
                    they are queued; a stream is never interleaved with another
  --keep-partial    never remove the temporary files other (dead) receivers left in --out
  --e2e-key <file>  keys to open end-to-end encrypted streams with (default: $STREAM_E2E_KEY);
                    one under a key id not held is refused, its sender told, nothing written
  --json            print one JSON event per line on stdout (listening, start, progress, done, rejected, error)
  -h, --help        this help
`;

export const DEMO_HELP = `Usage: stream demo [--size <bytes>] [--json] [--keep]

Streams a generated file through an in-process transport (no broker needed): sender and receiver
in one process, the receiver writing to a temporary file. Prints the SHA-256 of the source, of
what was sent, of what the receiver verified and of the file written, the rate and the peak RSS.
Exits 5 if any of them differ.

Options:
  --size <bytes>    how much to stream, e.g. 8MiB, 1GiB (default 256MiB)
  --keep            keep the temporary folder (its path is printed)
  --json            print one JSON event per line on stdout (start, progress, done, error)
  -h, --help        this help
`;

export const LS_HELP = `Usage: stream ls [--json]

Lists the unfinished transfers: sends of a file, and receives into a folder, that failed or whose
process was killed (the direction column says which). Each can be continued with
\`stream resume <id>\`. The journal is in $STREAM_STATE_DIR, else
$XDG_STATE_HOME/stream, else ~/.local/state/stream; entries untouched for 7 days are removed.

Options:
  --json        one JSON event per transfer on stdout
  -h, --help    this help
`;

export const RESUME_HELP = `Usage: stream resume <id> [--broker <url>] [--receive]

Continues an unfinished send (see \`stream ls\`) with the same stream id, destination and chunk
size: the receiver that holds its partial file (a receiver on the same --out) continues it, so at
most one window is sent again. The file must be unchanged (same size and modification time);
otherwise the resume is refused and the file must be sent again. Exit codes as for send.

For a receive: receives on the destination the journal recorded, takes that stream only and
continues its partial file in the folder it was saving into, after checking it against the journal
(a file changed since is not continued past what still matches, and that is said). Its sender must
offer the stream again: a live one does so by itself, a killed one once resumed; waits 120 s.
Where one state folder holds both the send and the receive of <id> (both on this machine), the
send is resumed unless --receive.

Options:
  --broker <url>  the broker (default: the one the journal recorded; credentials come from the
                  URL or STREAM_BROKER_USER / STREAM_BROKER_PASSWORD, never from the journal)
  --e2e-key <file> the keys of an end-to-end encrypted transfer (default: $STREAM_E2E_KEY); the
                  journal never records a key, so give it again
  --receive       resume the receive of <id>, not its send
  --json          print one JSON event per line on stdout
  -h, --help      this help
`;

export const KEYGEN_HELP = `Usage: stream keygen [--id <keyId>]

Prints a new random 256-bit key for end-to-end encryption as a line of a key file,
<keyId>:<base64>. Give the same file to the sender and the receiver (--e2e-key <file>), or its
line to both in $STREAM_E2E_KEY. A key file may hold several lines: a sender seals with the
first, a receiver opens any stream whose key id it holds (the key id travels in the clear).

Options:
  --id <keyId>      the key's id, 1-64 of A-Z a-z 0-9 . _ - (default: derived from the key)
  -h, --help        this help
`;
