// A CodeMirror 6 editor for the function view: syntax highlighting by file name, Ctrl/Cmd+S
// calls `onSave`, and `gotoLine` moves the cursor to a line an error names.
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { go } from '@codemirror/lang-go';
import { javascript } from '@codemirror/lang-javascript';
import { json } from '@codemirror/lang-json';
import { php } from '@codemirror/lang-php';
import { python } from '@codemirror/lang-python';
import { rust } from '@codemirror/lang-rust';
import { bracketMatching, defaultHighlightStyle, StreamLanguage, syntaxHighlighting } from '@codemirror/language';
import { lua } from '@codemirror/legacy-modes/mode/lua';
import { EditorState, type Extension } from '@codemirror/state';
import { EditorView, highlightActiveLine, keymap, lineNumbers } from '@codemirror/view';
import { useEffect, useRef } from 'preact/hooks';

/** The language of a file, by its extension. */
export function languageOf(path: string): Extension[] {
  const ext = path.toLowerCase().split('.').pop() ?? '';
  switch (ext) {
    case 'js':
    case 'mjs':
    case 'cjs':
      return [javascript()];
    case 'ts':
      return [javascript({ typescript: true })];
    case 'py':
      return [python()];
    case 'php':
      return [php()];
    case 'rs':
      return [rust()];
    case 'go':
      return [go()];
    case 'json':
      return [json()];
    case 'lua':
      return [StreamLanguage.define(lua)];
    default:
      return [];
  }
}

export interface EditorHandle {
  gotoLine(line: number): void;
}

export function CodeEditor(props: {
  /** Changing it (another file, a reload from disk) replaces the document. */
  docKey: string;
  value: string;
  path: string;
  readOnly?: boolean;
  onChange(text: string): void;
  onSave(): void;
  handle?: { current: EditorHandle | null };
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  // The latest callbacks, for the editor's listeners created once per document.
  const cbs = useRef(props);
  cbs.current = props;
  useEffect(() => {
    if (!host.current) return;
    const v = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: props.value,
        extensions: [
          lineNumbers(),
          history(),
          bracketMatching(),
          highlightActiveLine(),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          keymap.of([
            { key: 'Mod-s', preventDefault: true, run: () => (cbs.current.onSave(), true) },
            indentWithTab,
            ...defaultKeymap,
            ...historyKeymap,
          ]),
          EditorState.readOnly.of(!!props.readOnly),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) cbs.current.onChange(u.state.doc.toString());
          }),
          ...languageOf(props.path),
        ],
      }),
    });
    view.current = v;
    if (props.handle)
      props.handle.current = {
        gotoLine(line: number) {
          const doc = v.state.doc;
          const l = doc.line(Math.max(1, Math.min(line, doc.lines)));
          v.dispatch({ selection: { anchor: l.from }, scrollIntoView: true });
          v.focus();
        },
      };
    return () => {
      v.destroy();
      view.current = null;
    };
    // A new document (key) or mode builds a new editor; typing does not.
  }, [props.docKey, props.path, props.readOnly]);
  return <div class="code-editor" ref={host} data-testid="code-editor" />;
}
