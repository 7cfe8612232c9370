import { routeOf, type Coordinator, type DbRecord, type Route, type Unsubscribe } from '../core/index.js';

/**
 * Where each running db's writer listens, as last heard: from catalog reads and
 * from every DbChanged the coordinator publishes. A route that fails to connect
 * is dropped, so the next connection asks for a wake instead of trying it again.
 */
export class ComputeRoutes {
  #routes = new Map<string, Route>();
  #unsubscribe: Unsubscribe;

  constructor(coordinator: Coordinator) {
    this.#unsubscribe = coordinator.onDbChanged(({ db }) => this.remember(db));
  }

  get(dbId: string): Route | undefined {
    return this.#routes.get(dbId);
  }

  remember(db: DbRecord): Route | null {
    const route = routeOf(db);
    const known = this.#routes.get(db.id);
    // An older writer term never replaces a newer one (events can arrive out of order across processes).
    if (route && known && known.writerTerm > route.writerTerm) return known;
    if (route) this.#routes.set(db.id, route);
    else this.#routes.delete(db.id);
    return route;
  }

  drop(dbId: string, route: Route): void {
    const known = this.#routes.get(dbId);
    if (known && known.host === route.host && known.port === route.port) this.#routes.delete(dbId);
  }

  close(): void {
    this.#unsubscribe();
    this.#routes.clear();
  }
}
