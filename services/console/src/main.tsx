import { render } from "preact";
import { useState } from "preact/hooks";
import "./style.css";
import { currentUser, signOut, type User } from "./api";
import { go, useRoute } from "./ui";
import { SignIn } from "./pages/signin";
import { Practice, PracticeHome } from "./pages/practice";
import { Result } from "./pages/result";
import { Progress } from "./pages/progress";
import { Dashboard, Jobs, Sessions } from "./pages/manager";
import { Admin } from "./pages/admin";
import { ImportCall } from "./pages/realcall";
import { Certifications } from "./pages/certifications";

const NAV: Record<string, [string, string][]> = {
  trainee: [
    ["practice", "Practice"],
    ["progress", "My progress"],
    ["sessions", "My sessions"],
    ["import", "Upload a call"],
  ],
  manager: [
    ["dashboard", "Dashboard"],
    ["sessions", "Sessions"],
    ["jobs", "Grading jobs"],
    ["import", "Upload a call"],
    ["certifications", "Certifications"],
    ["practice", "Practice"],
  ],
  admin: [
    ["dashboard", "Dashboard"],
    ["sessions", "Sessions"],
    ["jobs", "Grading jobs"],
    ["import", "Upload a call"],
    ["certifications", "Certifications"],
    ["admin/members", "Admin"],
  ],
};

function home(u: User) {
  return u.role === "trainee" ? "practice" : "dashboard";
}

function App() {
  const route = useRoute();
  const [user, setUser] = useState(currentUser());
  if (!user) {
    return (
      <SignIn
        onSignedIn={(u) => {
          setUser(u);
          go(home(u));
        }}
      />
    );
  }
  const [top = home(user), a, b] = route;
  let page;
  switch (top) {
    case "practice":
      page = a ? <Practice id={a} /> : <PracticeHome />;
      break;
    case "results":
      page = <Result id={a ?? ""} />;
      break;
    case "progress":
      page = <Progress />;
      break;
    case "dashboard":
      page = <Dashboard />;
      break;
    case "sessions":
      page = <Sessions trainee={a} />;
      break;
    case "jobs":
      page = <Jobs />;
      break;
    case "import":
      page = <ImportCall />;
      break;
    case "certifications":
      page = <Certifications />;
      break;
    case "admin":
      page = <Admin section={a ?? "members"} id={b} />;
      break;
    default:
      page = <p>Page not found.</p>;
  }
  const nav = NAV[user.role] ?? [];
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={`#/${home(user)}`}>
          Salestrainer
        </a>
        <nav aria-label="Main">
          {nav.map(([path, label]) => (
            <a href={`#/${path}`} aria-current={top === path.split("/")[0] ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div class="who">
          <span>
            {user.subject} <small class="muted">({user.role})</small>
          </span>
          <button
            type="button"
            class="link"
            onClick={() => {
              signOut();
              setUser(null);
              go("");
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
