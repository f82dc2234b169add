/**
 * How a step's work is split across containers: by object or folder of one of its inputs, a hash
 * of the objects' keys into N buckets (the key: the path, its name, a regex's group or a field of
 * the objects' metadata), a regex's groups (of the path or of a metadata field), or broadcast
 * (every container gets all).
 */
import { isObject, numberFromText } from "./document";
import { problemsAt, ProblemList, SelectField, TextField } from "./fields";
import { HASH_KEY_KINDS, hashKeyFor, hashKeyKind, regexTarget } from "./partition";
import type { StepEditProps } from "./StepPanel";

const BY = [
  ["none", "not partitioned: one container"],
  ["object", "one partition per file of an input"],
  ["directory", "one partition per folder of an input"],
  ["hash", "hash of each file's key into N partitions"],
  ["regex", "grouped by a regex's capture group"],
  ["broadcast", "every partition gets the whole input"],
] as const;

export function PartitionEditor({ index, step, problems, set, at }: StepEditProps) {
  const partition = isObject(step.partition) ? step.partition : {};
  const by = typeof partition.by === "string" ? partition.by : "none";
  const inputNames = isObject(step.inputs) ? Object.keys(step.inputs) : [];
  const input = typeof partition.input === "string" ? partition.input : "";
  const keyKind = hashKeyKind(partition.key);
  const target = regexTarget(partition);
  const inputOptions = [...new Set([...(input && !inputNames.includes(input) ? [input] : []), ...inputNames])];
  const change = (next: string) => {
    if (next === "none") return set(["partition"], undefined);
    const base = { by: next, input: input || inputNames[0] || "" };
    set(["partition"], next === "hash" ? { ...base, partitions: 4 } : next === "regex" ? { ...base, pattern: "(.*)" } : base);
  };
  return (
    <fieldset>
      <legend>Partitioning</legend>
      <SelectField label="Partition by" value={by} options={BY} onChange={change} problems={problemsAt(problems, at("partition", "by"))} />
      {by !== "none" && (
        <SelectField
          label="Partitioned input"
          value={input}
          options={[["", "(choose an input)"], ...inputOptions.map((n) => [n, n] as const)]}
          onChange={(v) => set(["partition", "input"], v)}
          problems={problemsAt(problems, at("partition", "input"))}
        />
      )}
      {by === "hash" && (
        <>
          <TextField
            label="Partitions"
            value={partition.partitions}
            onChange={(v) => set(["partition", "partitions"], numberFromText(v))}
            problems={problemsAt(problems, at("partition", "partitions"))}
          />
          <SelectField
            label="Hash key"
            value={keyKind}
            options={HASH_KEY_KINDS}
            onChange={(v) => set(["partition", "key"], hashKeyFor(v as typeof keyKind, partition.key))}
            problems={keyKind === "path" || keyKind === "basename" || keyKind === "stem" ? problemsAt(problems, at("partition", "key")) : []}
          />
          {keyKind === "regex" && isObject(partition.key) && (
            <TextField
              label="Key pattern"
              value={partition.key.regex}
              onChange={(v) => set(["partition", "key", "regex"], v)}
              problems={problemsAt(problems, at("partition", "key"))}
              hint="one capture group: its value is the key"
            />
          )}
          {keyKind === "metadata" && isObject(partition.key) && (
            <TextField
              label="Key metadata field"
              value={partition.key.metadata}
              onChange={(v) => set(["partition", "key", "metadata"], v)}
              problems={problemsAt(problems, at("partition", "key"))}
              hint="a file without the field is in no partition"
            />
          )}
        </>
      )}
      {by === "regex" && (
        <>
          <SelectField
            label="Match pattern against"
            value={target}
            options={[
              ["path", "the file's relative path"],
              ["metadata", "a field of its metadata"],
            ]}
            onChange={(v) => set(["partition", "metadata"], v === "metadata" ? "" : undefined)}
            problems={[]}
          />
          {target === "metadata" && (
            <TextField
              label="Metadata field"
              value={partition.metadata}
              onChange={(v) => set(["partition", "metadata"], v)}
              problems={problemsAt(problems, at("partition", "metadata"))}
              hint="a file without the field is in no partition"
            />
          )}
          <TextField label="Pattern" value={partition.pattern} onChange={(v) => set(["partition", "pattern"], v)} problems={problemsAt(problems, at("partition", "pattern"))} />
          <TextField
            label="Group"
            value={partition.group}
            onChange={(v) => set(["partition", "group"], v === "" ? undefined : numberFromText(v))}
            problems={problemsAt(problems, at("partition", "group"))}
            placeholder="1"
          />
        </>
      )}
      <ProblemList id={`partition-${index}-problems`} problems={problems.filter((p) => p.path === `nodes[${index}].partition`)} />
    </fieldset>
  );
}
