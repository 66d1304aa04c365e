// Comments at a transcript line: a manager (or admin) comments on a line, the trainee answers;
// new and deleted ones arrive through WatchSession (include_comments), so nobody reloads.
import { useState } from "preact/hooks";
import type { Comment } from "../gen/salestrainer/call/v1/comments_pb.js";
import { call, currentUser, errorText, fieldErrors, fmtDate, me } from "../api";
import { ErrorBox } from "../ui";

const staff = () => ["admin", "manager"].includes(currentUser()?.role ?? "");

/** Adds `c` to `list` unless it is there already (the watch may push what we just created). */
export function withComment(list: Comment[], c: Comment): Comment[] {
  return list.some((x) => x.name === c.name) ? list : [...list, c];
}

/** `list` without the comment `name` and the replies under it (a deletion takes them along). */
export function withoutComment(list: Comment[], name: string): Comment[] {
  const gone = new Set([name]);
  for (const x of list) if (gone.has(x.replyTo)) gone.add(x.name);
  return list.filter((x) => !gone.has(x.name));
}

/** The comments of one transcript line: threads (oldest first), replies under their parent. */
export function LineComments(props: {
  session: string;
  segmentId: string;
  comments: Comment[];
  onChange: (next: Comment[] | ((list: Comment[]) => Comment[])) => void;
}) {
  const here = props.comments.filter((c) => c.segmentId === props.segmentId);
  const [open, setOpen] = useState(false);
  const roots = here.filter((c) => !c.replyTo || !here.some((p) => p.name === c.replyTo));
  const replies = (parent: string): Comment[] => here.filter((c) => c.replyTo === parent);
  const remove = async (c: Comment) => {
    try {
      await call.deleteComment({ name: c.name });
      props.onChange((list) => withoutComment(list, c.name));
    } catch (e) {
      alert(errorText(e));
    }
  };
  const thread = (c: Comment) => (
    <li class="comment">
      <div class="comment-head">
        <strong>{c.author.split("/").pop()}</strong> <span class="muted">{fmtDate(c.createTime)}</span>
        {(c.author === me() || currentUser()?.role === "admin") && (
          <button type="button" class="link" onClick={() => remove(c)}>
            Delete
          </button>
        )}
      </div>
      <p>{c.body}</p>
      {replies(c.name).length > 0 && <ul class="replies">{replies(c.name).map(thread)}</ul>}
      <NewComment
        label="Reply"
        session={props.session}
        segmentId={props.segmentId}
        replyTo={c.name}
        onCreated={(n) => props.onChange((list) => withComment(list, n))}
      />
    </li>
  );
  if (!roots.length && !staff()) return null;
  return (
    <li class="line-comments" aria-label="Comments on this line">
      {roots.length > 0 && <ul class="comments">{roots.map(thread)}</ul>}
      {staff() &&
        (open ? (
          <NewComment
            label="Comment"
            session={props.session}
            segmentId={props.segmentId}
            autoOpen
            onCreated={(n) => {
              props.onChange((list) => withComment(list, n));
              setOpen(false);
            }}
          />
        ) : (
          <button type="button" class="link" onClick={() => setOpen(true)}>
            Comment on this line
          </button>
        ))}
    </li>
  );
}

function NewComment(props: {
  label: string;
  session: string;
  segmentId: string;
  replyTo?: string;
  autoOpen?: boolean;
  onCreated: (c: Comment) => void;
}) {
  const [open, setOpen] = useState(!!props.autoOpen);
  const [body, setBody] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  if (!open) {
    return (
      <button type="button" class="link" onClick={() => setOpen(true)}>
        {props.label}
      </button>
    );
  }
  const submit = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await call.createComment({
        parent: props.session,
        comment: {
          body,
          segmentId: props.replyTo ? "" : props.segmentId,
          replyTo: props.replyTo ?? "",
        },
      });
      if (r.comment) props.onCreated(r.comment);
      setBody("");
      setOpen(false);
    } catch (e) {
      const f = fieldErrors(e);
      setError(f["comment.body"] ?? f["comment.segment_id"] ?? f["comment.reply_to"] ?? errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="comment-form" onSubmit={submit}>
      <textarea
        aria-label={props.label}
        value={body}
        rows={2}
        onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)}
      />
      <ErrorBox text={error} />
      <button type="submit" disabled={busy || !body.trim()}>
        {props.label}
      </button>{" "}
      <button type="button" class="link" onClick={() => setOpen(false)}>
        Cancel
      </button>
    </form>
  );
}
