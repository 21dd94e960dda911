import { taskDefaults } from '../task-defaults';
import { TaskFailure } from '../task-failure';

/** One weighted key term of a document. */
export interface KeyTerm {
  term: string;
  /** Times the term occurs. */
  count: number;
  /** 0 to 1, the highest-weighted term of the document being 1. */
  weight: number;
}

/** What a document analysis returns to its caller (the `result` of the `completed` update). */
export interface DocumentAnalysisResult {
  characters: number;
  words: number;
  unique_words: number;
  sentences: number;
  paragraphs: number;
  average_sentence_words: number;
  /** At 230 words a minute, rounded up. */
  reading_time_s: number;
  /** Highest weight first. */
  top_terms: KeyTerm[];
  /** The highest-scoring sentences, in the order they appear in the document. */
  summary: string[];
}

/** A stage boundary or chunk: where the analysis reports progress and may be stopped. */
export interface AnalysisProgress {
  stage: 'normalise' | 'tokenise' | 'statistics' | 'key_terms' | 'summary';
  /** Percent complete, 0 to 100. */
  progress: number;
  message: string;
}

/** Options of {@link analyseDocument}. */
export interface DocumentAnalysisOptions {
  /** Documents larger than this (UTF-8 bytes) fail with `document_too_large`. @default 524_288 */
  maxBytes?: number;
  /** How many key terms the result lists. @default 10 */
  topTerms?: number;
  /** How many sentences the summary keeps. @default 3 */
  summarySentences?: number;
  /**
   * Called at every stage boundary and between chunks, awaited before the work goes on, so
   * progress is reported in order and a cancelled task stops here (the callback throws).
   */
  checkpoint?: (progress: AnalysisProgress) => Promise<void>;
  /** Characters of text per chunk between checkpoints and event-loop yields. @default 65_536 */
  chunkChars?: number;
  /**
   * A pause after each stage. Only for tests and demos (TASK_STAGE_DELAY_MS), which need a task
   * to stay running long enough to be cancelled or to lose its worker. @default 0
   */
  stageDelayMs?: number;
}

/** Defaults of {@link DocumentAnalysisOptions}. */
export const documentAnalysisDefaults = {
  maxBytes: taskDefaults.maxDocumentBytes,
  topTerms: 10,
  summarySentences: 3,
  chunkChars: 65_536,
  stageDelayMs: taskDefaults.stageDelayMs,
} as const;

// A short English stop list: the key terms of a document are rarely among them.
const STOP_WORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both ' +
    'but by can could did do does doing down during each few for from further had has have having he her here hers ' +
    'herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on ' +
    'once only or other our ours ourselves out over own same she should so some such than that the their theirs them ' +
    'themselves then there these they this those through to too under until up very was we were what when where ' +
    'which while who whom why will with would you your yours yourself yourselves also may might must shall us via'
  ).split(' '),
);

const WORDS_PER_MINUTE = 230;

/** Lets the event loop run (I/O, timers, /healthz) between chunks of CPU work. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Analyses a plain-text document in five stages (normalise, tokenise, statistics, key terms,
 * summary sentences), calling `checkpoint` between stages and chunks. Key terms are weighted
 * by term frequency times inverse sentence frequency (TF-ISF: a term that fills a few
 * sentences says more than one spread evenly), and the summary keeps the sentences whose
 * terms weigh most per word. Throws {@link TaskFailure} for empty or oversized documents.
 */
export async function analyseDocument(
  content: string,
  options: DocumentAnalysisOptions = {},
): Promise<DocumentAnalysisResult> {
  const o = { ...documentAnalysisDefaults, ...options };
  const checkpoint = async (p: AnalysisProgress) => {
    await options.checkpoint?.(p);
  };
  const stageDone = async () => {
    if (o.stageDelayMs > 0) await sleep(o.stageDelayMs);
    else await yieldToLoop();
  };

  const bytes = Buffer.byteLength(content, 'utf8');
  if (bytes > o.maxBytes) {
    throw new TaskFailure(
      'document_too_large',
      `the document is ${bytes} bytes; the maximum is ${o.maxBytes} (TASK_MAX_DOCUMENT_BYTES)`,
    );
  }

  // 1. Normalise: one form per character, unified line ends, no control characters.
  await checkpoint({ stage: 'normalise', progress: 5, message: 'normalising text' });
  const text = content
    .normalize('NFKC')
    .replace(/\r\n?/g, '\n')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ' ');
  if (text.trim() === '') throw new TaskFailure('empty_document', 'the document has no text to analyse');
  await stageDone();

  // 2. Tokenise: paragraphs, sentences, lower-cased words; in chunks so a large document
  // neither blocks the event loop nor ignores a cancel for long.
  await checkpoint({ stage: 'tokenise', progress: 15, message: 'splitting sentences and words' });
  const paragraphs = text.split(/\n\s*\n/).filter((p) => p.trim() !== '');
  const sentences: { text: string; words: string[] }[] = [];
  let consumed = 0;
  let sinceYield = 0;
  for (const paragraph of paragraphs) {
    for (const raw of splitSentences(paragraph)) {
      const words = raw.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? [];
      if (words.length > 0) sentences.push({ text: raw.replace(/\s+/g, ' ').trim(), words });
      consumed += raw.length;
      sinceYield += raw.length;
      if (sinceYield >= o.chunkChars) {
        sinceYield = 0;
        const share = Math.min(1, consumed / text.length);
        await checkpoint({
          stage: 'tokenise',
          progress: 15 + Math.floor(share * 20),
          message: `tokenised ${Math.round(share * 100)}% of the text`,
        });
        await yieldToLoop();
      }
    }
  }
  await stageDone();

  // 3. Statistics.
  await checkpoint({ stage: 'statistics', progress: 40, message: 'counting words and sentences' });
  const frequency = new Map<string, number>();
  const sentenceFrequency = new Map<string, number>();
  let words = 0;
  for (const sentence of sentences) {
    words += sentence.words.length;
    for (const w of sentence.words) frequency.set(w, (frequency.get(w) ?? 0) + 1);
    for (const w of new Set(sentence.words)) sentenceFrequency.set(w, (sentenceFrequency.get(w) ?? 0) + 1);
  }
  await stageDone();

  // 4. Key terms (TF-ISF), stop words and one-letter tokens left out.
  await checkpoint({ stage: 'key_terms', progress: 60, message: 'weighing key terms' });
  const n = sentences.length;
  const scored: { term: string; count: number; score: number }[] = [];
  for (const [term, count] of frequency) {
    if (STOP_WORDS.has(term) || term.length < 2 || /^\d+$/.test(term)) continue;
    const isf = Math.log(1 + n / (sentenceFrequency.get(term) ?? 1));
    scored.push({ term, count, score: count * isf });
  }
  scored.sort((a, b) => b.score - a.score || b.count - a.count || a.term.localeCompare(b.term));
  const top = scored.slice(0, o.topTerms);
  const best = top[0]?.score ?? 1;
  const topTerms = top.map((t) => ({ term: t.term, count: t.count, weight: round(t.score / best, 4) }));
  await stageDone();

  // 5. Summary: sentences scored by the weight of their terms per word (long sentences do
  // not win by length), the best kept in document order.
  await checkpoint({ stage: 'summary', progress: 80, message: 'choosing summary sentences' });
  const weightOf = new Map(scored.map((t) => [t.term, t.score / best]));
  const ranked = sentences
    .map((s, index) => ({
      index,
      text: s.text,
      score: s.words.reduce((sum, w) => sum + (weightOf.get(w) ?? 0), 0) / Math.sqrt(s.words.length),
    }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, o.summarySentences)
    .sort((a, b) => a.index - b.index);
  await stageDone();

  return {
    characters: text.length,
    words,
    unique_words: frequency.size,
    sentences: n,
    paragraphs: paragraphs.length,
    average_sentence_words: n === 0 ? 0 : round(words / n, 2),
    reading_time_s: Math.ceil((words / WORDS_PER_MINUTE) * 60),
    top_terms: topTerms,
    summary: ranked.map((s) => truncate(s.text, 400)),
  };
}

/** Splits at `.`, `!` or `?` (with closing quotes) followed by space, and at line ends. */
function splitSentences(paragraph: string): string[] {
  return paragraph
    .split(/(?<=[.!?…]["'”’)\]]*)\s+|\n+/u)
    .map((s) => s.trim())
    .filter(Boolean);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
