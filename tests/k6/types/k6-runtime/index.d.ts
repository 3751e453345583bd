// Globals that the k6 runtime provides but @types/k6 does not declare
// (without lib "DOM" or @types/node nothing else declares them either).
// https://grafana.com/docs/k6/latest/javascript-api/ : console and the timer
// functions are global in k6, as well as importable from k6/timers.

import type { IntervalID, TimeoutID } from "k6/timers";

declare global {
    interface Console {
        log(...data: any[]): void;
        info(...data: any[]): void;
        warn(...data: any[]): void;
        error(...data: any[]): void;
        debug(...data: any[]): void;
    }
    var console: Console;

    function setTimeout(functionRef: (...args: any[]) => void, delay: number, ...args: any[]): TimeoutID;
    function clearTimeout(timeoutID: TimeoutID): void;
    function setInterval(functionRef: (...args: any[]) => void, delay: number, ...args: any[]): IntervalID;
    function clearInterval(intervalID: IntervalID): void;
}

export {};
