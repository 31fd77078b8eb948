// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints its diagnostics as
// JSON lines: {"severity": "error"|"warning"|"info"|"hint", "code", "message", "path"}. Reads the document
// from the file named by the first argument. Exits 0 when it parsed; tests/functional/test_asyncapi.py
// fails on any error-severity diagnostic.
import { readFileSync } from "node:fs";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info", [DiagnosticSeverity.Hint]: "hint",
};
const source = readFileSync(process.argv[2], "utf8");
const { document, diagnostics } = await new Parser().parse(source);
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: SEVERITY[d.severity], code: d.code, message: d.message,
                               path: d.path.join("/") }));
}
console.log(JSON.stringify({ parsed: document !== undefined,
                             messages: document ? document.allMessages().length : 0 }));
