import { showFatal } from './boot';
import { render } from 'preact';
import { App } from './app';
import { makeBackend } from './backend';
import { StoreCtx } from './ctx';
import { Store } from './store';
import './style.css';

const root = document.getElementById('app')!;

try {
  const store = new Store(makeBackend());
  void store.start();
  render(
    <StoreCtx.Provider value={store}>
      <App />
    </StoreCtx.Provider>,
    root,
  );
} catch (err) {
  showFatal('start-up failed', err);
}
