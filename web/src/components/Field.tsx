import type { ComponentChildren, JSX } from "preact";

interface FieldProps {
  id: string;
  label: string;
  type?: "text" | "email" | "password";
  value: string;
  onInput: (value: string) => void;
  error?: string;
  hint?: ComponentChildren;
  autoComplete?: string;
  required?: boolean;
  minLength?: number;
  maxLength?: number;
  multiline?: boolean;
}

/** A labelled input with its error in words right below it, tied together for screen readers. */
export function Field(props: FieldProps) {
  const describedBy = [props.error ? `${props.id}-error` : "", props.hint ? `${props.id}-hint` : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id: props.id,
    name: props.id,
    value: props.value,
    required: props.required,
    maxLength: props.maxLength,
    "aria-invalid": props.error ? true : undefined,
    "aria-describedby": describedBy,
    onInput: (event: Event) => props.onInput((event.currentTarget as HTMLInputElement).value),
  };
  return (
    <div class={`field${props.error ? " field--error" : ""}`}>
      <label for={props.id}>{props.label}</label>
      {props.multiline ? (
        <textarea {...common} rows={4} />
      ) : (
        <input {...(({ ...common, type: props.type ?? "text", autoComplete: props.autoComplete, minLength: props.minLength }) as unknown as JSX.IntrinsicElements["input"])} />
      )}
      {props.hint && (
        <p class="hint" id={`${props.id}-hint`}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="error" id={`${props.id}-error`} role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

/** "is taken" → "That username is taken." style sentences from the API's field problems. */
export function fieldSentence(label: string, problem: string | undefined): string | undefined {
  if (!problem) return undefined;
  const text = `${label} ${problem}`.trim();
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
