import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { Store, useStore } from './store';

export const StoreCtx = createContext<Store | null>(null);

/** The store, and a re-render whenever it changes. */
export function useApp() {
  const store = useContext(StoreCtx);
  if (!store) throw new Error('no store');
  const state = useStore(store);
  return { store, state, backend: store.backend };
}
