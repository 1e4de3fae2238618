/** Form fields the Ask and Chat settings share. */
import { useLlms } from '../hooks.ts';

/** A labelled number input that reports only valid numbers, clamped to its range. */
export function NumberField(props: { label: string; value: number; min: number; max: number; step: number; onChange: (v: number) => void }) {
  return (
    <label>
      {props.label}
      <input
        type="number"
        inputMode="decimal"
        value={props.value}
        min={props.min}
        max={props.max}
        step={props.step}
        onChange={(e) => {
          const v = e.currentTarget.valueAsNumber;
          if (Number.isFinite(v)) props.onChange(Math.min(props.max, Math.max(props.min, v)));
        }}
      />
    </label>
  );
}

/** The server's ready LLMs; '' stands for the server's default. */
export function ModelSelect(props: { value: string; onChange: (model: string) => void }) {
  const llms = useLlms();
  return (
    <label>
      Model
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">server default</option>
        {llms.map((m) => (
          <option key={m.id} value={m.id}>
            {m.id}
          </option>
        ))}
      </select>
    </label>
  );
}
