import { render } from "preact";
import { App } from "./App";
import { loadSession } from "./store";
import "./styles.css";

void loadSession();
render(<App />, document.getElementById("app")!);
