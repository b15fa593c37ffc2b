// Refresher runs a task now and then every interval while the page is visible. A failure does not
// stop it: it retries sooner at first, then backs off, and reports its state so the page can show
// "offline, retrying" instead of breaking. Hidden pages (a phone in a pocket) make no requests.

const RETRY_DELAYS_MS = [5000, 15000, 30000, 60000, 120000];

export class Refresher {
  // task: async () => void; it throws to report a failure.
  // onState({phase, error, retryAt, lastSuccess}): phase is 'ok', 'running' or 'failed'.
  constructor(task, { interval = 15000, onState = () => {} } = {}) {
    this.task = task;
    this.interval = interval;
    this.onState = onState;
    this.timer = 0;
    this.running = false;
    this.again = false;
    this.active = false;
    this.failures = 0;
    this.lastAttempt = 0;
    this.lastSuccess = 0;
    this.onVisibility = () => this.visibilityChanged();
    this.onOnline = () => this.now();
  }

  start() {
    if (this.active) return;
    this.active = true;
    document.addEventListener('visibilitychange', this.onVisibility);
    window.addEventListener('online', this.onOnline);
    this.now();
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisibility);
    window.removeEventListener('online', this.onOnline);
  }

  // now runs the task at once (or right after the run in progress).
  now() {
    if (!this.active) return;
    clearTimeout(this.timer);
    if (this.running) {
      this.again = true;
      return;
    }
    this.run();
  }

  async run() {
    this.running = true;
    this.lastAttempt = Date.now();
    let delay = this.interval;
    try {
      await this.task();
      this.failures = 0;
      this.lastSuccess = Date.now();
      this.report('ok');
    } catch (error) {
      delay = RETRY_DELAYS_MS[Math.min(this.failures, RETRY_DELAYS_MS.length - 1)];
      this.failures++;
      this.report('failed', error, Date.now() + delay);
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.now();
      return;
    }
    this.schedule(delay);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    if (!this.active || document.visibilityState === 'hidden') return;
    this.timer = setTimeout(() => this.now(), delay);
  }

  visibilityChanged() {
    if (!this.active) return;
    if (document.visibilityState === 'hidden') {
      clearTimeout(this.timer);
      return;
    }
    // Back in view: refresh at once if the data is older than one interval.
    const age = Date.now() - this.lastAttempt;
    if (age >= this.interval || this.failures > 0) this.now();
    else this.schedule(this.interval - age);
  }

  report(phase, error = null, retryAt = 0) {
    this.onState({ phase, error, retryAt, lastSuccess: this.lastSuccess });
  }
}
